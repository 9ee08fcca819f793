import { V1, api, ApiError } from "/ui/common.js";

const form = document.getElementById("login-form");
const message = document.getElementById("login-message");

function next() {
  const target = new URLSearchParams(location.search).get("next") || "/";
  // Only a path on this site: never send a token's owner elsewhere.
  return target.startsWith("/") && !target.startsWith("//") ? target : "/";
}

// Enabled once this script runs: a form sent by the browser itself would not be JSON.
form.querySelector("button[type=submit]").disabled = false;

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  message.textContent = "";
  const token = document.getElementById("token").value.trim();
  try {
    await api("/login", { method: "POST", body: { token }, redirect: false });
    await api(`${V1}/operations?limit=1`, { redirect: false });
    location.assign(next());
  } catch (error) {
    message.textContent = error instanceof ApiError && error.status === 401
      ? "This token was refused." : `Could not log in: ${error.message}`;
  }
});
