//! Small wrappers over browser APIs (hydrate only): local storage, random ids, the clock, and why
//! a connection was refused.

/// Where the display name is remembered between visits.
const NAME_KEY: &str = "palaver.name";
/// Where this browser's sender key is kept (see `ClientMsg::Join::key`).
const SENDER_KEY: &str = "palaver.key";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The display name chosen on an earlier visit, if any.
pub fn saved_name() -> Option<String> {
    local_storage()?.get_item(NAME_KEY).ok().flatten()
}

/// Remembers the display name for next time. Storage may be disabled (private mode): then the name
/// simply is not remembered.
pub fn save_name(name: &str) {
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(NAME_KEY, name);
    }
}

/// This browser's sender key: made once and kept, so a message resent after a reconnect is
/// recognised, and no one else can claim its client ids. Without storage (private mode), one per
/// page load.
pub fn sender_key() -> String {
    if let Some(key) = local_storage().and_then(|s| s.get_item(SENDER_KEY).ok().flatten()) {
        return key;
    }
    let key = random_uuid();
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(SENDER_KEY, &key);
    }
    key
}

/// A fresh random UUID for a message's `client_id`.
pub fn random_uuid() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        // crypto.randomUUID needs a secure context (https or localhost). Elsewhere fall back to
        // Math.random, which is fine for an idempotency key (it is not a secret).
        .unwrap_or_else(|| format!("{:016x}{:016x}", random_u64(), random_u64()))
}

fn random_u64() -> u64 {
    (js_sys::Math::random() * (u64::MAX as f64)) as u64
}

/// A private room id: 64 lowercase hex digits from the browser's CSPRNG (256 bits).
pub fn private_room_id() -> Option<String> {
    let crypto = web_sys::window()?.crypto().ok()?;
    let mut bytes = [0u8; 32];
    crypto.get_random_values_with_u8_array(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A number in `[0, 1)`, for backoff jitter.
pub fn jitter() -> f64 {
    js_sys::Math::random()
}

/// Whether the browser believes it has a network connection.
pub fn is_online() -> bool {
    web_sys::window()
        .map(|w| w.navigator().on_line())
        .unwrap_or(true)
}

/// `ws://` or `wss://` URL of a path on the page's own host.
pub fn websocket_url(path: &str) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}{path}", location.host().ok()?))
}

/// Why a WebSocket to `path` could not be opened, if the server refused it for joining too often:
/// how long to wait, in milliseconds. A browser cannot see the status of a failed upgrade, so this
/// asks the same URL with a plain `GET`, which the server answers with 429 and `Retry-After`
/// while the address is over its join budget.
pub async fn join_refusal(path: &str) -> Option<u32> {
    let window = web_sys::window()?;
    let response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(path))
        .await
        .ok()?;
    let response: web_sys::Response = wasm_bindgen::JsCast::dyn_into(response).ok()?;
    if response.status() != 429 {
        return None;
    }
    let secs: u32 = response
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1);
    Some(secs.saturating_mul(1000))
}

/// Local wall-clock time `HH:MM` of a Unix timestamp in milliseconds.
pub fn local_clock(ms: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// Sets `data-hydrated="true"` on `<html>` once the app is interactive.
pub fn mark_hydrated() {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}

/// `navigator[name]` as a function bound to `navigator`, if the browser has it (the clipboard
/// and share APIs, reached without web-sys's unstable bindings).
fn navigator_call(path: &[&str], args: &js_sys::Array) -> Option<js_sys::Promise> {
    use wasm_bindgen::JsCast;
    let mut this: wasm_bindgen::JsValue = web_sys::window()?.navigator().into();
    let (last, parents) = path.split_last()?;
    for name in parents {
        this = js_sys::Reflect::get(&this, &(*name).into()).ok()?;
        if this.is_undefined() {
            return None;
        }
    }
    let function: js_sys::Function = js_sys::Reflect::get(&this, &(*last).into())
        .ok()?
        .dyn_into()
        .ok()?;
    function.apply(&this, args).ok()?.dyn_into().ok()
}

/// Puts `text` on the clipboard; whether it worked.
pub async fn copy_text(text: &str) -> bool {
    let args = js_sys::Array::of1(&text.into());
    match navigator_call(&["clipboard", "writeText"], &args) {
        Some(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.is_ok(),
        None => false,
    }
}

/// Whether the system share sheet is there (phones, mostly).
pub fn can_share() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"share".into()).ok())
        .is_some_and(|f| f.is_function())
}

/// Opens the system share sheet with `url`; whether it was shared (not cancelled).
pub async fn share(title: &str, url: &str) -> bool {
    let data = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&data, &"title".into(), &title.into());
    let _ = js_sys::Reflect::set(&data, &"url".into(), &url.into());
    match navigator_call(&["share"], &js_sys::Array::of1(&data)) {
        Some(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.is_ok(),
        None => false,
    }
}

/// This page's origin (`https://chat.example.org`).
pub fn origin() -> Option<String> {
    web_sys::window()?.location().origin().ok()
}

/// Desktop notifications: `granted`, `denied` or `default` (not asked yet); `None` where the
/// browser has none.
pub fn notification_permission() -> Option<web_sys::NotificationPermission> {
    let window = web_sys::window()?;
    js_sys::Reflect::has(&window, &"Notification".into())
        .ok()
        .filter(|has| *has)?;
    Some(web_sys::Notification::permission())
}

/// Asks for permission to notify (only ever after the reader asked for notifications).
pub async fn request_notifications() -> Option<web_sys::NotificationPermission> {
    notification_permission()?;
    let promise = web_sys::Notification::request_permission().ok()?;
    wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    notification_permission()
}

/// Shows a desktop notification, if permitted.
pub fn notify(title: &str, body: &str, tag: &str) {
    if notification_permission() != Some(web_sys::NotificationPermission::Granted) {
        return;
    }
    let options = web_sys::NotificationOptions::new();
    options.set_body(body);
    options.set_tag(tag);
    let _ = web_sys::Notification::new_with_options(title, &options);
}
