//! The browser entry point: `hydrate()` is called by the generated JS and takes over the
//! server-rendered page.

// Leptos views are deeply nested types; release builds need more room than the default 128.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
