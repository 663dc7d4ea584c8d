//! Any address that is not a page: 404, and a way home.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::ErrorCard;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <ErrorCard title="Page not found" href="/" action="Go home"/>
    }
}
