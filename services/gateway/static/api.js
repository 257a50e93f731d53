// The operator token and calls to the REST API. The token comes from the URL fragment
// (#token=..., printed by `helmctl up`), is kept in sessionStorage and removed from the URL.
const KEY = "helm.token";

export function initToken() {
  const match = /(?:^|[#&])token=([^&]+)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return token();
}

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return data;
}

export function wsUrl() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const query = token() ? `?token=${encodeURIComponent(token())}` : "";
  return `${scheme}://${window.location.host}/ws${query}`;
}
