// The owner's cards (a station without a CSMS): names, tags, expiry; add and remove when logged in.
"use strict";
(function () {
  const { $, h, fmt, api, act, say, state } = window.cp;

  // An expiry date is the end of that day in this browser's local time: valid through it.
  function endOfDay(value) {
    const [y, m, d] = value.split("-").map(Number);
    return new Date(y, m - 1, d + 1, 0, 0, 0).getTime() / 1000;
  }

  function expiryWords(card) {
    if (card.expiry == null) return "never expires";
    const through = fmt.date(card.expiry - 1);
    return card.expired ? `expired ${through}` : `valid through ${through}`;
  }

  function render(data) {
    state.cardNames = {};
    for (const c of data.cards) state.cardNames[c.id_tag] = c.name;
    const list = $("cards-list");
    if (!data.cards.length) {
      list.replaceChildren(h("li", { class: "muted" }, "No cards yet: add one below."));
    } else {
      list.replaceChildren(...data.cards.map((c) => h("li", { class: c.expired ? "expired" : "", id: `card-${c.id_tag}` },
        h("span", { class: "card-name" }, c.name),
        h("span", { class: "card-tag" }, c.id_tag),
        h("span", { class: "card-expiry" }, expiryWords(c)),
        data.in_use && state.actions.includes("cards_remove") ? h("button", {
          type: "button", class: "small", id: `card-remove-${c.id_tag}`, "aria-label": `Remove card ${c.name}`,
          onclick: async (event) => {
            if (await act(event.currentTarget, "cards_remove", { id_tag: c.id_tag }, () => `Card “${c.name}” removed`)) load();
          },
        }, "Remove") : null)));
    }
    $("cards-note").textContent = data.in_use
      ? (data.free_vend ? "Plugging in also charges without a card (free vend)." : "Only these cards may charge.")
      : "A central system (CSMS) decides who may charge; these cards are kept but not used.";
    $("card-add-form").hidden = !data.in_use || !state.actions.includes("cards_add");
    document.dispatchEvent(new CustomEvent("cp-cards"));
  }

  async function load() {
    const section = $("cards-section");
    if (!state.loggedIn) { section.hidden = true; return; }
    try {
      const data = await api("/api/cards");
      // With a CSMS the owner's cards are not used: the section shows only cards kept from before.
      section.hidden = !data.in_use && !data.cards.length;
      render(data);
    } catch (err) {
      section.hidden = true;
    }
  }

  $("card-add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("card-name").value.trim(), tag = $("card-tag").value.trim(), expiry = $("card-expiry").value;
    if (!name || !tag) { say("A card needs a name and its tag."); return; }
    const body = { name, id_tag: tag, expiry: expiry ? endOfDay(expiry) : null };
    // A tag already listed is somebody's card: it gets the new name and expiry only if the owner says so.
    const listed = state.cardNames[tag];
    if (listed !== undefined) {
      if (!window.confirm(`Card ${tag} is already listed as “${listed}”. Give it the name “${name}” and the new expiry?`)) {
        say(`Card ${tag} left as “${listed}”.`, true);
        return;
      }
      body.rename = true;
    }
    const added = await act($("card-add"), "cards_add", body, () => `Card “${name}” added`);
    if (added) {
      event.target.reset();
      load();
    }
  });

  window.cpCards = { load };
})();
