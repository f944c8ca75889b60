// Live availability on the hosted event page: refreshes each tier's count and state without a
// reload. The page works without it.
(function () {
  "use strict";
  var root = document.querySelector("[data-availability]");
  if (!root || !window.fetch) { return; }
  var url = root.getAttribute("data-availability");
  function refresh() {
    fetch(url, { headers: { accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        body.tiers.forEach(function (tier) {
          var state = document.querySelector('[data-tier-state="' + tier.id + '"]');
          if (state) { state.textContent = tier.label; }
          var picker = document.querySelector('[data-tier-quantity="' + tier.id + '"]');
          if (picker) {
            Array.prototype.forEach.call(picker.options, function (option) {
              option.disabled = Number(option.value) > tier.most;
            });
          }
        });
      })
      .catch(function () { /* offline: keep what is shown */ });
  }
  window.setInterval(refresh, 15000);
})();
