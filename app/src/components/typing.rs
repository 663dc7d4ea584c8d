//! "Ada is typing…" under the messages: who else is typing right now (each shown for a few
//! seconds after their last signal, or until their message arrives), read out politely.

use leptos::prelude::*;

use crate::chat::RoomState;

/// The words for who is typing.
pub fn typing_words(names: &[String]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("{one} is typing…")),
        [one, two] => Some(format!("{one} and {two} are typing…")),
        _ => Some("Several people are typing…".to_owned()),
    }
}

#[component]
pub fn TypingLine(state: RoomState) -> impl IntoView {
    let words = move || {
        let names: Vec<String> = state
            .typing
            .with(|t| t.iter().map(|(name, _)| name.clone()).collect());
        typing_words(&names)
    };
    view! { <p class="typing needs-js" aria-live="polite">{words}</p> }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_two_or_several() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(super::typing_words(&[]), None);
        assert_eq!(
            super::typing_words(&names(&["Ada"])).unwrap(),
            "Ada is typing…"
        );
        assert_eq!(
            super::typing_words(&names(&["Ada", "Bo"])).unwrap(),
            "Ada and Bo are typing…"
        );
        assert_eq!(
            super::typing_words(&names(&["a", "b", "c"])).unwrap(),
            "Several people are typing…"
        );
    }
}
