// Apply the saved theme before the first paint (no flash of the wrong theme). A file of its
// own, loaded by index.html: the Content-Security-Policy runs no inline script.
(function () {
  var t = localStorage.getItem("clauderon.theme") || "system";
  var dark = t === "dark" || (t === "system" && matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
})();
