// The secret of a patient link lives in the URL's fragment, which browsers never send to the
// server. Links that stay on this page (?lang=…) and links marked data-keep-fragment (to a page
// that comes back here) carry the fragment along, so switching language loses no key.
function keepFragment() {
  const hash = window.location.hash;
  for (const link of document.querySelectorAll('a[href^="?"], a[data-keep-fragment]')) {
    link.setAttribute("href", link.getAttribute("href").split("#")[0] + hash);
  }
}

keepFragment();
window.addEventListener("hashchange", keepFragment);
