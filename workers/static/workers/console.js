// The jobs console refreshes its live part in place: every few seconds it fetches the same URL
// and swaps #console-live, unless the user is in the middle of something there (a focused field,
// a ticked box), so a selection is never wiped out under their cursor.
(function () {
  "use strict";
  const live = document.getElementById("console-live");
  if (!live) return;
  const interval = parseInt(live.dataset.refreshMs, 10) || 3000;

  function busy() {
    if (live.contains(document.activeElement) && document.activeElement.matches("input, select, textarea")) return true;
    return live.querySelector("input[type=checkbox]:checked") !== null;
  }

  async function refresh() {
    if (document.hidden || busy()) return;
    try {
      const response = await fetch(window.location.href, { headers: { "X-Console-Refresh": "1" }, credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("console-live");
      if (!fresh || busy()) return;
      live.innerHTML = fresh.innerHTML;
      const stamp = document.getElementById("console-updated-at");
      const freshStamp = page.getElementById("console-updated-at");
      if (stamp && freshStamp) stamp.replaceWith(freshStamp);
      live.dispatchEvent(new CustomEvent("console:refreshed", { bubbles: true }));
    } catch (error) {
      // The server restarting or the network away for a moment: the next tick tries again.
    }
  }

  window.setInterval(refresh, interval);
})();
