//! The one card every "this cannot be shown" page uses: a title, what happened, and one way on.

use leptos::prelude::*;

#[component]
pub fn ErrorCard(
    /// What went wrong, as the page's heading.
    title: &'static str,
    /// What it means for the reader, if there is more to say.
    #[prop(optional)]
    text: Option<&'static str>,
    /// Where the one button goes, and what it says.
    #[prop(into)]
    href: String,
    action: &'static str,
    /// Announced to screen readers at once (for failures, not for a wrong address).
    #[prop(optional)]
    alert: bool,
) -> impl IntoView {
    view! {
        <main class="home">
            <section class="card" role=alert.then_some("alert")>
                <h1>{title}</h1>
                {text.map(|text| view! { <p>{text}</p> })}
                <a class="button primary" href=href>{action}</a>
            </section>
        </main>
    }
}
