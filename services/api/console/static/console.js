// herald console: live schedule preview, copy buttons, and polling of open runs and the bell.
// Every page works without it; it only saves reloads.
"use strict";

function debounce(fn, wait) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), wait); };
}

function showFieldsFor(form) {
  const frequency = form.elements["frequency"].value;
  for (const field of form.querySelectorAll("[data-frequencies]")) {
    field.hidden = !field.dataset.frequencies.split(" ").includes(frequency);
  }
  // A job's type is chosen only when it is created; an edit shows the fields of its own.
  const type = form.elements["type"];
  if (!type) return;
  for (const field of form.querySelectorAll("[data-types]")) {
    field.hidden = !field.dataset.types.split(" ").includes(type.value);
  }
}

// The daylight-saving choices apply only to a job at a fixed local time: the preview the
// server renders says whether this schedule is one ("" while the expression is not valid).
function showDstFor(form, target) {
  const marker = target.querySelector("[data-dst-applies]");
  const choices = document.getElementById("dst-choices");
  if (!marker || !choices || marker.dataset.dstApplies === "") return;
  const applies = marker.dataset.dstApplies === "true";
  choices.disabled = !applies;
  for (const line of choices.querySelectorAll("[data-dst-when]")) {
    line.hidden = (line.dataset.dstWhen === "applies") !== applies;
  }
}

function livePreview(form) {
  const target = document.getElementById("preview");
  let latest = 0;
  const refresh = debounce(async () => {
    const asked = ++latest;
    const response = await fetch(form.dataset.preview, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    });
    // A slower earlier answer must not overwrite a newer one.
    if (asked === latest && response.ok) {
      target.innerHTML = await response.text();
      showDstFor(form, target);
    }
  }, 300);
  form.addEventListener("input", refresh);
  form.addEventListener("change", () => { showFieldsFor(form); refresh(); });
  showFieldsFor(form);
}

async function copyText(button) {
  const source = document.getElementById(button.dataset.copy);
  const status = button.parentElement.querySelector(".copied");
  const text = source.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Without clipboard permission, fall back to selecting the text for the person.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  if (status) status.textContent = "Copied.";
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (response.status === 401) { window.location.reload(); return null; }
  return response.ok ? response.json() : null;
}

function pollRun(element) {
  const tick = async () => {
    const state = await getJson(element.dataset.pollState);
    // Reload without the query, so a one-time notice ("Run started.") is not shown again.
    if (state && state.status !== element.dataset.status) { window.location.replace(window.location.pathname); return; }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
}

function pollBell(bell) {
  const count = document.getElementById("bell-count");
  const tick = async () => {
    const state = await getJson(bell.dataset.poll);
    if (state) {
      const unread = state.unreadCount;
      bell.dataset.count = String(unread);
      bell.setAttribute("aria-label", `Notifications, ${unread} unread`);
      count.textContent = String(unread);
      count.hidden = unread === 0;
    }
    setTimeout(tick, 3000);
  };
  setTimeout(tick, 3000);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-preview]");
  if (form) livePreview(form);
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => copyText(button));
  }
  const run = document.querySelector("[data-poll-state]");
  if (run) pollRun(run);
  const bell = document.getElementById("bell");
  if (bell) pollBell(bell);
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
});
