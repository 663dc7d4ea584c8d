//! Who is in the room, as far as the page knows: the count (always right), and the names it has
//! been told of — the first page after joining, the changes since, and more pages as the reader
//! scrolls or searches the list. However big the room, the page holds what it was sent, and the
//! server sends nothing that grows with the room.

use std::collections::BTreeSet;

/// The room's roster as shown in the header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterView {
    /// How many people are in the room.
    pub count: usize,
    /// Names known to be here, sorted.
    pub names: BTreeSet<String>,
    /// Whether `names` is everyone (no page left to load, no unnamed change since).
    pub complete: bool,
    /// Names verified people hold (of those the page was told of).
    pub verified: BTreeSet<String>,
    /// The results of the reader's search, when one is under way.
    pub search: Option<Search>,
}

/// Names that match what the reader typed in the roster's search box.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub query: String,
    pub names: Vec<String>,
    /// Whether more matches follow the last one.
    pub more: bool,
}

/// A `roster` frame: a page of names, and the request it answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub names: Vec<String>,
    /// Which of `names` verified people hold.
    pub verified: Vec<String>,
    pub count: usize,
    pub more: bool,
    pub after: Option<String>,
    pub query: Option<String>,
}

/// A `presence` frame: the change since the last one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub count: usize,
    pub joined: Vec<String>,
    /// Which of `joined` verified people hold.
    pub verified: Vec<String>,
    pub left: Vec<String>,
    pub more_joined: usize,
    pub more_left: usize,
}

impl RosterView {
    /// Applies a page: the first one starts the list (or the search) afresh, later ones add to it.
    pub fn apply_page(&mut self, page: Page) {
        self.count = page.count;
        for name in &page.names {
            self.verified.remove(name);
        }
        self.verified.extend(page.verified);
        match page.query {
            Some(query) => {
                let fresh = page.after.is_none();
                let search = self.search.get_or_insert_with(Search::default);
                if fresh || search.query != query {
                    *search = Search {
                        query,
                        ..Search::default()
                    };
                }
                search.names.extend(page.names);
                search.more = page.more;
            }
            None => {
                if page.after.is_none() {
                    self.names.clear();
                }
                self.names.extend(page.names);
                self.complete = !page.more;
            }
        }
    }

    /// Applies a change: the count, and the names it gives.
    pub fn apply_change(&mut self, change: &Change) {
        self.count = change.count;
        for name in change.left.iter().chain(&change.joined) {
            self.names.remove(name);
            self.verified.remove(name);
        }
        self.verified.extend(change.verified.iter().cloned());
        self.names.extend(change.joined.iter().cloned());
        if change.more_joined + change.more_left > 0 {
            // Someone came or went unnamed: the list is no longer everyone.
            self.complete = false;
        }
    }

    /// Whether a verified person holds `name`.
    pub fn is_verified(&self, name: &str) -> bool {
        self.verified.contains(name)
    }

    /// The names to list: the search's results while searching, else everyone known.
    pub fn listed(&self) -> Vec<String> {
        match &self.search {
            Some(search) => search.names.clone(),
            None => self.names.iter().cloned().collect(),
        }
    }

    /// Whether the list can load more: the name to continue after (`None` when nothing is left).
    pub fn continue_after(&self) -> Option<String> {
        match &self.search {
            Some(search) if search.more => search.names.last().cloned(),
            Some(_) => None,
            None if !self.complete => self.names.last().cloned(),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn pages_build_the_list_and_changes_keep_it() {
        let mut r = RosterView::default();
        r.apply_page(Page {
            names: names(&["Ada", "Bo"]),
            count: 3,
            more: true,
            ..Page::default()
        });
        assert!(!r.complete);
        assert_eq!(r.continue_after().as_deref(), Some("Bo"));
        r.apply_page(Page {
            names: names(&["Cy"]),
            count: 3,
            more: false,
            after: Some("Bo".into()),
            query: None,
            verified: names(&["Cy"]),
        });
        assert!(r.is_verified("Cy") && !r.is_verified("Ada"));
        assert!(r.complete);
        assert_eq!(r.listed(), names(&["Ada", "Bo", "Cy"]));
        r.apply_change(&Change {
            count: 3,
            joined: names(&["Di"]),
            left: names(&["Bo", "Cy"]),
            verified: names(&["Di"]),
            ..Change::default()
        });
        assert_eq!(r.listed(), names(&["Ada", "Di"]));
        assert!(r.is_verified("Di") && !r.is_verified("Cy"), "Cy left");
        assert!(r.complete);
        r.apply_change(&Change {
            count: 40,
            more_joined: 37,
            ..Change::default()
        });
        assert_eq!(r.count, 40);
        assert!(!r.complete, "unnamed arrivals: the list is not everyone");
    }

    #[test]
    fn a_search_lists_its_own_results_and_a_new_query_starts_afresh() {
        let mut r = RosterView::default();
        let found = |query: &str, list: &[&str], after: Option<&str>, more| Page {
            names: names(list),
            count: 500,
            more,
            after: after.map(str::to_owned),
            query: Some(query.to_owned()),
            verified: vec![],
        };
        r.apply_page(found("ad", &["Ada", "Adam"], None, true));
        r.apply_page(found("ad", &["Adele"], Some("Adam"), false));
        assert_eq!(r.listed(), names(&["Ada", "Adam", "Adele"]));
        assert_eq!(r.continue_after(), None);
        r.apply_page(found("bo", &["Bo"], None, false));
        assert_eq!(r.listed(), names(&["Bo"]));
        r.search = None;
        assert!(r.listed().is_empty(), "no roster page yet");
    }
}
