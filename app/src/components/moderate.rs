//! Moderation in the room page, for its moderators: the form a mute or ban is made with (how
//! long, why), the outcome line, and the moderators' panel — mutes and bans in force, each with
//! a button to lift it, and the audit log. Everything goes through the HTTP API
//! (`/api/rooms/{room}/moderation`); the server checks who may.

use leptos::{ev, html, prelude::*};

use crate::moderation::{Action, AuditEntry, ModerationRequest, ModerationView, Sanction, Target};

/// Where moderation happens on a room page. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Moderation {
    room: StoredValue<String>,
    /// The outcome of the last action: (succeeded, words).
    pub status: RwSignal<Option<(bool, String)>>,
    /// The panel's view, once loaded (and after every action).
    pub view: RwSignal<Option<ModerationView>>,
}

impl Moderation {
    pub fn new(room: String) -> Self {
        Self {
            room: StoredValue::new(room),
            status: RwSignal::new(None),
            view: RwSignal::new(None),
        }
    }

    /// Asks the server to make `request`, and says how it went.
    pub fn act(self, request: ModerationRequest, done: String) {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::api::moderate(&self.room.get_value(), &request).await {
                Ok(view) => {
                    let done = match (request.action, view.audit.first()) {
                        (Action::Purge, Some(entry)) => {
                            format!("Removed {} of their messages.", entry.count.unwrap_or(0))
                        }
                        _ => done,
                    };
                    self.view.set(Some(view));
                    self.status.set(Some((true, done)));
                }
                Err(e) => self.status.set(Some((false, e))),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (request, done, self.room);
    }

    /// Loads the panel's view.
    pub fn load(self) {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::api::moderation(&self.room.get_value()).await {
                Ok(view) => self.view.set(Some(view)),
                Err(e) => self.status.set(Some((false, e))),
            }
        });
    }
}

/// Lengths a mute or ban can be given, in minutes.
const LENGTHS: [(u32, &str); 5] = [
    (10, "10 minutes"),
    (60, "1 hour"),
    (1_440, "1 day"),
    (10_080, "1 week"),
    (43_200, "30 days"),
];

/// "Mute Ada" / "Ban Ada": how long and why, then the action.
#[component]
pub fn SanctionForm(
    moderation: Moderation,
    action: Action,
    seq: u64,
    name: String,
    /// Closes the form.
    done: RwSignal<Option<Action>>,
) -> impl IntoView {
    let minutes = RwSignal::new(LENGTHS[1].0);
    let reason = RwSignal::new(String::new());
    let verb = if action == Action::Mute {
        "Mute"
    } else {
        "Ban"
    };
    let id = format!("sanction-{seq}");
    let title = format!("{verb} {name}");
    let label = title.clone();
    let on_submit = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        let length = LENGTHS
            .iter()
            .find(|(m, _)| *m == minutes.get_untracked())
            .map_or("a while", |(_, label)| label);
        let words = format!(
            "{} is {} for {length}.",
            name,
            if action == Action::Mute {
                "muted"
            } else {
                "banned"
            }
        );
        let request = ModerationRequest {
            action,
            seq: Some(seq),
            target: None,
            minutes: minutes.get_untracked(),
            reason: reason.get_untracked().trim().to_owned(),
        };
        moderation.act(request, words);
        done.set(None);
    };
    view! {
        <form class="sanction stack" aria-label=label on:submit=on_submit
            on:keydown=move |ev: ev::KeyboardEvent| if ev.key() == "Escape" { done.set(None) }>
            <p class="sanction-title">{title}</p>
            <label for=format!("{id}-length")>"For"</label>
            <select id=format!("{id}-length") on:change=move |ev| {
                if let Ok(m) = event_target_value(&ev).parse() { minutes.set(m) }
            }>
                {LENGTHS.into_iter().map(|(m, label)| view! {
                    <option value=m.to_string() selected=move || minutes.get() == m>{label}</option>
                }).collect_view()}
            </select>
            <label for=format!("{id}-reason")>"Reason (they will see it)"</label>
            <input id=format!("{id}-reason") maxlength=crate::moderation::MAX_REASON_CHARS.to_string()
                prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))/>
            <div class="row">
                <button type="submit" class="danger">{verb}</button>
                <button type="button" class="secondary" on:click=move |_| done.set(None)>"Cancel"</button>
            </div>
        </form>
    }
}

/// The outcome of the last moderation action, under the messages.
#[component]
pub fn ModerationStatus(moderation: Moderation) -> impl IntoView {
    view! {
        <p class=move || match moderation.status.get() { Some((false, _)) => "mod-status error", _ => "mod-status hint" }
            role="status" aria-live="polite">
            {move || moderation.status.get().map(|(_, words)| words)}
        </p>
    }
}

/// The moderators' panel: loaded when opened.
#[component]
pub fn ModerationPanel(moderation: Moderation) -> impl IntoView {
    let details = NodeRef::<html::Details>::new();
    let on_toggle = move |_: ev::Event| {
        if details.get_untracked().is_some_and(|d| d.open()) {
            moderation.load();
        }
    };
    view! {
        <details class="moderation-panel" node_ref=details on:toggle=on_toggle>
            <summary>"Moderation"</summary>
            <div class="stack">
                {move || match moderation.view.get() {
                    None => view! { <p class="hint">"Loading…"</p> }.into_any(),
                    Some(view) => view! {
                        <Sanctions moderation list=view.sanctions/>
                        <AuditLog entries=view.audit/>
                    }.into_any(),
                }}
            </div>
        </details>
    }
}

#[component]
fn Sanctions(moderation: Moderation, list: Vec<Sanction>) -> impl IntoView {
    if list.is_empty() {
        return view! { <h3>"In force"</h3><p class="hint">"Nobody is muted or banned."</p> }
            .into_any();
    }
    view! {
        <h3>"In force"</h3>
        <ul class="sanctions">
            {list.into_iter().map(|s| view! { <SanctionRow moderation s/> }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn SanctionRow(moderation: Moderation, s: Sanction) -> impl IntoView {
    let (lift, verb) = match s.kind {
        crate::moderation::SanctionKind::Mute => (Action::Unmute, "Muted"),
        crate::moderation::SanctionKind::Ban => (Action::Unban, "Banned"),
    };
    let who = match &s.target {
        Target::User(_) => s.name.clone(),
        Target::Address(address) => format!("{} (guest, {address})", s.name),
    };
    let line = format!("{verb}: {who}, until {}", crate::time::clock(s.until_ms));
    let reason = (!s.reason.is_empty()).then(|| format!("“{}”", s.reason));
    let (name, target) = (s.name.clone(), s.target.clone());
    let on_lift = move |_| {
        let request = ModerationRequest {
            action: lift,
            seq: None,
            target: Some(target.clone()),
            minutes: 0,
            reason: String::new(),
        };
        let words = if lift == Action::Unmute {
            format!("{name} may post again.")
        } else {
            format!("{name} may join again.")
        };
        moderation.act(request, words);
    };
    view! {
        <li>
            <span>{line}</span>
            {reason.map(|r| view! { <span class="hint">{r}</span> })}
            <button type="button" class="secondary" on:click=on_lift
                aria-label=format!("Lift: {}", s.name)>"Lift"</button>
        </li>
    }
}

#[component]
fn AuditLog(entries: Vec<AuditEntry>) -> impl IntoView {
    view! {
        <h3>"Audit log"</h3>
        {entries.is_empty().then(|| view! { <p class="hint">"No actions yet."</p> })}
        <ol class="audit">
            {entries.into_iter().map(|e| view! { <li>{describe(&e)}</li> }).collect_view()}
        </ol>
    }
}

/// One audit entry in words: "14:05 Mod muted Ada until 15:05 — spam".
fn describe(entry: &AuditEntry) -> String {
    let mut words = format!(
        "{} {} {} {}",
        crate::time::clock(entry.at_ms),
        entry.by,
        entry.action.past_tense(),
        entry.name
    );
    if let Some(until) = entry.until_ms.filter(|_| entry.action != Action::Kick) {
        words.push_str(&format!(" until {}", crate::time::clock(until)));
    }
    if let (Action::Delete, Some(seq)) = (entry.action, entry.seq) {
        words.push_str(&format!(" (message {seq})"));
    }
    if let (Action::Purge, Some(count)) = (entry.action, entry.count) {
        words.push_str(&format!(" ({count} removed)"));
    }
    if !entry.reason.is_empty() {
        words.push_str(&format!(" — {}", entry.reason));
    }
    words
}
