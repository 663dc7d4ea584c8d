//! `@name` completion in the composer: while the word before the caret starts with `@`, the
//! people in the room whose names start with what follows are offered (a listbox the textarea
//! controls); ↓/↑ choose, Enter or Tab takes one, Escape closes. Names come from the roster this
//! page knows (a big room's first pages).

use leptos::prelude::*;

use crate::chat::RoomState;

/// Most names offered at once.
const OFFERED: usize = 6;

/// What is being completed: where the `@` is in the text, and what follows it up to the caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    pub at: usize,
    pub typed: String,
}

/// The `@word` ending at byte `caret` of `text`, if there is one.
pub fn partial(text: &str, caret: usize) -> Option<Partial> {
    let before = text.get(..caret)?;
    let at = before.rfind('@')?;
    let typed = &before[at + 1..];
    let starts_word = before[..at]
        .chars()
        .next_back()
        .is_none_or(char::is_whitespace);
    let one_word = !typed.chars().any(char::is_whitespace) && typed.chars().count() <= 32;
    (starts_word && one_word).then(|| Partial {
        at,
        typed: typed.to_owned(),
    })
}

/// The names to offer for `typed`, not the reader's own.
pub fn offered(names: &[String], typed: &str, me: Option<&str>) -> Vec<String> {
    let typed = typed.to_lowercase();
    names
        .iter()
        .filter(|n| Some(n.as_str()) != me && n.to_lowercase().starts_with(&typed))
        .take(OFFERED)
        .cloned()
        .collect()
}

/// `text` with the partial replaced by `@name ` (and where the caret goes after it).
pub fn complete(text: &str, partial: &Partial, caret: usize, name: &str) -> (String, usize) {
    let inserted = format!("@{name} ");
    let mut out = String::with_capacity(text.len() + inserted.len());
    out.push_str(&text[..partial.at]);
    out.push_str(&inserted);
    let after = partial.at + inserted.len();
    out.push_str(text.get(caret..).unwrap_or_default());
    (out, after)
}

/// The completion state of one composer.
#[derive(Clone, Copy)]
pub struct Completion {
    pub partial: RwSignal<Option<Partial>>,
    pub options: Memo<Vec<String>>,
    pub active: RwSignal<usize>,
}

impl Completion {
    pub fn new(state: RoomState) -> Self {
        let partial = RwSignal::new(None::<Partial>);
        let options = Memo::new(move |_| {
            let Some(p) = partial.get() else {
                return Vec::new();
            };
            let names: Vec<String> = state.roster.with(|r| r.names.iter().cloned().collect());
            let me = state.me.with(|m| m.as_ref().map(|m| m.name.clone()));
            offered(&names, &p.typed, me.as_deref())
        });
        Self {
            partial,
            options,
            active: RwSignal::new(0),
        }
    }

    pub fn is_open(&self) -> bool {
        self.options.with(|o| !o.is_empty())
    }

    pub fn close(&self) {
        self.partial.set(None);
        self.active.set(0);
    }

    /// Moves the highlighted option by `by` (wrapping).
    pub fn step(&self, by: isize) {
        let len = self.options.with_untracked(Vec::len) as isize;
        if len > 0 {
            self.active
                .update(|a| *a = (*a as isize + by).rem_euclid(len) as usize);
        }
    }
}

/// The listbox of names under the composer.
#[component]
pub fn MentionList(completion: Completion, on_pick: Callback<String>) -> impl IntoView {
    view! {
        <Show when=move || completion.is_open()>
            <ul class="mention-list" id="mention-list" role="listbox" aria-label="People to mention">
                {move || completion.options.get().into_iter().enumerate().map(|(i, name)| {
                    let chosen = name.clone();
                    view! {
                        <li role="option" id=format!("mention-{i}")
                            aria-selected=move || (completion.active.get() == i).to_string()
                            on:mousedown=move |ev| { ev.prevent_default(); on_pick.run(chosen.clone()); }>
                            "@" {name}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_before_the_caret_is_completed() {
        assert_eq!(
            partial("hi @ad", 6),
            Some(Partial {
                at: 3,
                typed: "ad".into()
            })
        );
        assert_eq!(
            partial("@", 1),
            Some(Partial {
                at: 0,
                typed: String::new()
            })
        );
        assert_eq!(partial("mail a@b", 8), None, "not after a word");
        assert_eq!(partial("@ada lovelace", 13), None, "one word only");
        let names = ["Ada".to_owned(), "adam".to_owned(), "Bob".to_owned()];
        assert_eq!(offered(&names, "AD", Some("adam")), ["Ada"]);
        let p = partial("hi @ad and", 6).unwrap();
        assert_eq!(
            complete("hi @ad and", &p, 6, "Ada"),
            ("hi @Ada  and".to_owned(), 8)
        );
    }
}
