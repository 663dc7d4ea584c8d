//! Message text as people see it: a small, safe Markdown subset — *emphasis*, **strong**,
//! `inline code`, fenced or indented code blocks, > quotes — and links, http and https only:
//! written as `[words](https://…)`, `<https://…>`, or bare. Parsed by `pulldown-cmark` (CommonMark),
//! bare links found by `linkify`; nothing is ever HTML: every construct outside the subset
//! (headings, lists, tables, images, raw HTML, `javascript:` links) is shown as the text that was
//! typed. The same function renders on the server (first HTML) and in the browser, so the two are
//! identical.

use leptos::prelude::*;
use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// A block of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Para(Vec<Inline>),
    Code(String),
    Quote(Vec<Block>),
}

/// Text within a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    /// An http or https link: its address and its words.
    Link(String, Vec<Inline>),
    Em(Vec<Inline>),
    Strong(Vec<Inline>),
    Code(String),
}

/// The `rel` of every link in a message: no referrer, no access to this page, no endorsement.
pub const LINK_REL: &str = "noopener noreferrer nofollow ugc";

/// What is being built while the events of one message are read.
enum Frame {
    /// The message itself, or a quote.
    Blocks(Vec<Block>),
    Para(Vec<Inline>),
    Code(String),
    Em(Vec<Inline>),
    Strong(Vec<Inline>),
    Link(String, Vec<Inline>),
}

/// Whether `url` may be a link: http or https only.
fn linkable(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Parses a message's text into the subset.
pub fn parse(text: &str) -> Vec<Block> {
    let mut stack = vec![Frame::Blocks(Vec::new())];
    // While > 0, events belong to a construct shown as typed (its source already added).
    let mut skipping = 0usize;
    for (event, range) in Parser::new(text).into_offset_iter() {
        if skipping > 0 {
            match event {
                Event::Start(_) => skipping += 1,
                Event::End(_) => skipping -= 1,
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(tag) => {
                let frame = match tag {
                    Tag::Paragraph => Frame::Para(Vec::new()),
                    Tag::BlockQuote(_) => Frame::Blocks(Vec::new()),
                    Tag::CodeBlock(_) => Frame::Code(String::new()),
                    Tag::Emphasis => Frame::Em(Vec::new()),
                    Tag::Strong => Frame::Strong(Vec::new()),
                    Tag::Link { dest_url, .. } if linkable(&dest_url) => {
                        Frame::Link(dest_url.trim().to_string(), Vec::new())
                    }
                    _ => {
                        add_text(&mut stack, text[range].trim_end_matches('\n'), true);
                        skipping = 1;
                        continue;
                    }
                };
                stack.push(frame);
            }
            Event::End(end) => close(&mut stack, end),
            Event::Text(t) => match stack.last_mut() {
                Some(Frame::Code(code)) => code.push_str(&t),
                Some(Frame::Link(..)) => add_text(&mut stack, &t, false),
                _ => add_text(&mut stack, &t, true),
            },
            Event::Code(code) => add_inline(&mut stack, Inline::Code(code.to_string())),
            Event::SoftBreak | Event::HardBreak => add_text(&mut stack, "\n", false),
            // Raw HTML, rules and anything else: as typed.
            _ => add_text(&mut stack, text[range].trim_end_matches('\n'), true),
        }
    }
    while stack.len() > 1 {
        // Every start has its end; this only guards against a parser surprise.
        close(&mut stack, TagEnd::Paragraph);
    }
    match stack.pop() {
        Some(Frame::Blocks(blocks)) => blocks,
        _ => Vec::new(),
    }
}

/// Ends the innermost frame and adds what it built to the one around it.
fn close(stack: &mut Vec<Frame>, _end: TagEnd) {
    let Some(frame) = stack.pop() else { return };
    if stack.is_empty() {
        // The root never closes.
        stack.push(frame);
        return;
    }
    match frame {
        Frame::Blocks(blocks) => add_block(stack, Block::Quote(blocks)),
        Frame::Para(inlines) => add_block(stack, Block::Para(inlines)),
        Frame::Code(code) => add_block(stack, Block::Code(code.trim_end_matches('\n').to_owned())),
        Frame::Em(inlines) => add_inline(stack, Inline::Em(inlines)),
        Frame::Strong(inlines) => add_inline(stack, Inline::Strong(inlines)),
        Frame::Link(href, inlines) => add_inline(stack, Inline::Link(href, inlines)),
    }
}

fn add_block(stack: &mut [Frame], block: Block) {
    match stack.last_mut() {
        Some(Frame::Blocks(blocks)) => blocks.push(block),
        // A block inside inline text cannot happen in CommonMark; keep its words if it does.
        _ => add_inline(stack, Inline::Text(plain(&[block]))),
    }
}

fn add_inline(stack: &mut [Frame], inline: Inline) {
    match stack.last_mut() {
        Some(Frame::Para(v) | Frame::Em(v) | Frame::Strong(v) | Frame::Link(_, v)) => {
            push_merged(v, inline)
        }
        Some(Frame::Code(code)) => code.push_str(&plain_inlines(&[inline])),
        // Text at block level (a rule, raw HTML, a heading shown as typed) is a paragraph.
        Some(Frame::Blocks(blocks)) => blocks.push(Block::Para(vec![inline])),
        None => {}
    }
}

/// Adds text, with bare http(s) links made links when `linkify` is set.
fn add_text(stack: &mut [Frame], text: &str, linkify: bool) {
    if !linkify {
        return add_inline(stack, Inline::Text(text.to_owned()));
    }
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    for span in finder.spans(text) {
        let piece = span.as_str();
        match span.kind() {
            Some(linkify::LinkKind::Url) if linkable(piece) => add_inline(
                stack,
                Inline::Link(piece.to_owned(), vec![Inline::Text(piece.to_owned())]),
            ),
            _ => add_inline(stack, Inline::Text(piece.to_owned())),
        }
    }
}

/// Adjacent text is one text node (the server's HTML and the browser's DOM agree on it).
fn push_merged(inlines: &mut Vec<Inline>, inline: Inline) {
    if let (Some(Inline::Text(last)), Inline::Text(next)) = (inlines.last_mut(), &inline) {
        last.push_str(next);
        return;
    }
    inlines.push(inline);
}

/// The words of blocks, without markup.
pub fn plain(blocks: &[Block]) -> String {
    blocks
        .iter()
        .map(|b| match b {
            Block::Para(inlines) => plain_inlines(inlines),
            Block::Code(code) => code.clone(),
            Block::Quote(inner) => plain(inner),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn plain_inlines(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|i| match i {
            Inline::Text(t) | Inline::Code(t) => t.clone(),
            Inline::Link(_, words) | Inline::Em(words) | Inline::Strong(words) => {
                plain_inlines(words)
            }
        })
        .collect()
}

/// Whether `text` mentions `name` as `@name` (ignoring case; not inside a longer word).
pub fn mentions(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let (text, wanted) = (text.to_lowercase(), format!("@{}", name.to_lowercase()));
    text.match_indices(&wanted).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + wanted.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(is_name_char)
    })
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// A message's text as views.
pub fn render(text: &str) -> AnyView {
    parse(text)
        .into_iter()
        .map(block_view)
        .collect_view()
        .into_any()
}

fn block_view(block: Block) -> AnyView {
    match block {
        Block::Para(inlines) => view! { <p>{inline_views(inlines)}</p> }.into_any(),
        Block::Code(code) => view! { <pre><code>{code}</code></pre> }.into_any(),
        Block::Quote(blocks) => {
            let inner = blocks.into_iter().map(block_view).collect_view();
            view! { <blockquote>{inner}</blockquote> }.into_any()
        }
    }
}

fn inline_views(inlines: Vec<Inline>) -> AnyView {
    inlines
        .into_iter()
        .map(inline_view)
        .collect_view()
        .into_any()
}

fn inline_view(inline: Inline) -> AnyView {
    match inline {
        Inline::Text(text) => text.into_any(),
        Inline::Code(code) => view! { <code>{code}</code> }.into_any(),
        Inline::Em(inner) => view! { <em>{inline_views(inner)}</em> }.into_any(),
        Inline::Strong(inner) => view! { <strong>{inline_views(inner)}</strong> }.into_any(),
        Inline::Link(href, inner) => view! {
            <a href=href rel=LINK_REL target="_blank">{inline_views(inner)}</a>
        }
        .into_any(),
    }
}

#[cfg(test)]
mod tests;
