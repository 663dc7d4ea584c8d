use super::*;

fn text(s: &str) -> Inline {
    Inline::Text(s.into())
}

fn link(url: &str) -> Inline {
    Inline::Link(url.into(), vec![text(url)])
}

#[test]
fn plain_text_stays_as_typed_with_its_line_breaks() {
    assert_eq!(
        parse("hello\nthere"),
        [Block::Para(vec![text("hello\nthere")])]
    );
    assert_eq!(parse(""), []);
}

#[test]
fn the_subset_is_rendered() {
    assert_eq!(
        parse("*a* **b** `c`"),
        [Block::Para(vec![
            Inline::Em(vec![text("a")]),
            text(" "),
            Inline::Strong(vec![text("b")]),
            text(" "),
            Inline::Code("c".into()),
        ])]
    );
    assert_eq!(
        parse("```\nfn x() {}\n```"),
        [Block::Code("fn x() {}".into())]
    );
    assert_eq!(
        parse("> quoted\n\nreply"),
        [
            Block::Quote(vec![Block::Para(vec![text("quoted")])]),
            Block::Para(vec![text("reply")]),
        ]
    );
}

#[test]
fn links_are_http_and_https_only() {
    assert_eq!(
        parse("see https://example.com/a?b=1 now"),
        [Block::Para(vec![
            text("see "),
            link("https://example.com/a?b=1"),
            text(" now")
        ])]
    );
    assert_eq!(
        parse("[docs](http://example.com)"),
        [Block::Para(vec![Inline::Link(
            "http://example.com".into(),
            vec![text("docs")]
        )])]
    );
    assert_eq!(
        parse("<https://example.com>"),
        [Block::Para(vec![link("https://example.com")])]
    );
    // Anything else is the text that was typed.
    for typed in [
        "[click](javascript:alert(1))",
        "[x](data:text/html,hi)",
        "javascript:alert(1)",
        "ftp://example.com",
    ] {
        let blocks = parse(typed);
        assert_eq!(blocks, [Block::Para(vec![text(typed)])], "{typed}");
    }
}

#[test]
fn html_and_other_markdown_are_shown_as_typed() {
    for typed in [
        "<script>alert(1)</script>",
        "<b>bold</b> text",
        "# not a heading",
        "- one\n- two",
        "---",
    ] {
        assert_eq!(plain(&parse(typed)), typed, "{typed}");
        let html = format!("{:?}", parse(typed));
        assert!(!html.contains("Link"), "{typed}: {html}");
    }
}

#[test]
fn an_image_is_its_text_never_an_image() {
    // No image is loaded (it would tell its host who reads); its address is an ordinary link.
    let typed = "![img](https://example.com/x.png)";
    assert_eq!(plain(&parse(typed)), typed);
    assert_eq!(
        parse(typed),
        [Block::Para(vec![
            text("![img]("),
            link("https://example.com/x.png"),
            text(")")
        ])]
    );
}

#[test]
fn mentions_are_whole_names_ignoring_case() {
    assert!(mentions("hi @Ada!", "ada"));
    assert!(mentions("@ada", "Ada"));
    assert!(mentions("cc @Ada Lovelace", "Ada Lovelace"));
    assert!(!mentions("hi @Adam", "Ada"));
    assert!(!mentions("mail ada@example.com", "example"));
    assert!(!mentions("hi Ada", "Ada"));
    assert!(!mentions("@", ""));
}
