// Loaded first, as a classic script (not a module): when one of the page's own module scripts
// fails to load (the phone lost its network while the page was loading, the server was
// restarting), the page has no script running at all and nothing in it could ever retry. This
// asks for the failed script again (at once when the browser comes back online, otherwise after a
// pause that grows from 1 s to 30 s) and reloads the page once it comes through, so that a reload
// never lands on the browser's own "no connection" page. One request at a time; an "online" that
// comes while a request is under way (the network came back as it failed) makes the next attempt
// go at once instead of after its whole pause. Jitsi's script (another origin, a classic
// script) is not ours: its failure is handled by the call page.
(function () {
  "use strict";
  var own = location.origin + "/static/js/";
  var failed = null;
  var nudged = false; // "online" since the latest request started
  window.addEventListener("online", function () { nudged = true; });
  function pause(ms) {
    return new Promise(function (resolve) {
      var done = function () {
        clearTimeout(timer);
        window.removeEventListener("online", done);
        resolve();
      };
      var timer = setTimeout(done, ms);
      window.addEventListener("online", done);
    });
  }
  function attempt(tries) {
    var wait = nudged ? 0 : navigator.onLine ? Math.min(30000, 1000 * Math.pow(2, tries)) : 30000;
    pause(wait).then(function () {
      nudged = false;
      return fetch(failed, { cache: "no-store", credentials: "same-origin" });
    }).then(function (response) {
      if (response.ok) location.reload();
      else attempt(tries + 1);
    }, function () { attempt(tries + 1); });
  }
  window.addEventListener("error", function (event) {
    var script = event.target;
    if (failed || !script || script.tagName !== "SCRIPT" || script.type !== "module") return;
    if (String(script.src).indexOf(own) !== 0) return;
    failed = script.src;
    nudged = false;
    attempt(0);
  }, true);
})();
