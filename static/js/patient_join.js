// Keeps the link's fragment (the consultation secret) across the knock: the form posts to a URL
// carrying the same fragment, which browsers never send to the server but keep on the redirect.
const form = document.getElementById("knock-form");
if (form && window.location.hash) form.action = form.getAttribute("action") + window.location.hash;
// The equipment test comes back to this page: it carries the fragment in its own fragment.
const precall = document.getElementById("precall-link");
if (precall && window.location.hash) precall.href = precall.getAttribute("href") + window.location.hash;
