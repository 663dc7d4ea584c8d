//! The room's rules, for its owner and admins: who may read, who may post, who the members are.
//! Saved through the API; what the server stored is shown back.

use leptos::{ev, prelude::*};

use crate::rules::{Audience, RoomRules};

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[component]
fn AudienceSelect(
    id: &'static str,
    label: &'static str,
    value: RwSignal<Audience>,
) -> impl IntoView {
    view! {
        <label for=id>{label}</label>
        <select id=id on:change=move |ev| {
            if let Ok(a) = Audience::parse(&event_target_value(&ev)) { value.set(a) }
        }>
            {Audience::ALL.into_iter().map(|a| view! {
                <option value=a.as_str() selected=move || value.get() == a>{a.label()}</option>
            }).collect_view()}
        </select>
    }
}

#[component]
pub fn RoomSettings(room: String, rules: RoomRules) -> impl IntoView {
    let read = RwSignal::new(rules.read);
    let post = RwSignal::new(rules.post);
    let members = RwSignal::new(rules.members.join("\n"));
    let roles = RwSignal::new(rules.member_roles.join("\n"));
    let slow = RwSignal::new(rules.slow_mode_secs.to_string());
    let status = RwSignal::new(None::<(bool, String)>);
    let saving = RwSignal::new(false);
    let room = StoredValue::new(room);
    let on_submit = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        let wanted = RoomRules {
            read: read.get_untracked(),
            post: post.get_untracked(),
            members: lines(&members.get_untracked()),
            member_roles: lines(&roles.get_untracked()),
            owner: None,
            slow_mode_secs: match slow.get_untracked().trim() {
                "" => 0,
                n => match n.parse() {
                    Ok(n) => n,
                    Err(_) => {
                        return status
                            .set(Some((false, "Slow mode is a number of seconds.".into())))
                    }
                },
            },
        };
        if let Err(e) = wanted.validate() {
            return status.set(Some((false, e)));
        }
        saving.set(true);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::api::set_rules(&room.get_value(), &wanted).await {
                Ok(_) => status.set(Some((
                    true,
                    "Saved. Everyone's next step follows the new rules.".into(),
                ))),
                Err(e) => status.set(Some((false, e))),
            }
            saving.set(false);
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (wanted, room);
    };
    view! {
        <details class="room-settings">
            <summary>"Room settings"</summary>
            <form class="stack" on:submit=on_submit>
                <AudienceSelect id="rules-read" label="Who may read" value=read/>
                <AudienceSelect id="rules-post" label="Who may post" value=post/>
                <label for="rules-members">"Members (user ids, one per line)"</label>
                <textarea id="rules-members" rows="3" prop:value=move || members.get()
                    on:input=move |ev| members.set(event_target_value(&ev))></textarea>
                <label for="rules-roles">"Member roles (one per line)"</label>
                <textarea id="rules-roles" rows="2" prop:value=move || roles.get()
                    on:input=move |ev| roles.set(event_target_value(&ev))></textarea>
                <label for="rules-slow">"Slow mode (seconds between one person's messages; 0: off)"</label>
                <input id="rules-slow" type="number" min="0" max="3600" inputmode="numeric"
                    prop:value=move || slow.get() on:input=move |ev| slow.set(event_target_value(&ev))/>
                <button type="submit" class="primary" disabled=move || saving.get()>
                    {move || if saving.get() { "Saving…" } else { "Save rules" }}
                </button>
                <p class=move || match status.get() { Some((false, _)) => "error", _ => "hint" }
                    role="status" aria-live="polite">{move || status.get().map(|(_, s)| s)}</p>
            </form>
        </details>
    }
}
