// Applies the theme the user chose before the page paints (no flash of the
// other theme). Without a choice, the system's preference applies.
(function () {
  try {
    var theme = localStorage.getItem("sift-theme");
    if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage disabled: follow the system */ }
})();
