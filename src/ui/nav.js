const button = document.getElementById('sign-out')
button?.addEventListener('click', async () => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? ''
  await fetch('/ui/logout', {
    method: 'POST',
    headers: { 'x-observers-csrf': csrf },
    credentials: 'same-origin',
  })
  location.assign('/ui/login')
})
