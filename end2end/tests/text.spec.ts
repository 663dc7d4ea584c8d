import { expect, test } from "@playwright/test";
import { joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

/** A message's rendered text without the hydration markers the server's HTML carries. */
async function textHtml(page: import("@playwright/test").Page, words: string): Promise<string> {
  const html = await messageWith(page, words).locator(".text").innerHTML();
  return html.replace(/<!--[^>]*-->/g, "");
}

test("links are clickable and safe, Markdown is rendered the same by the server and the browser, HTML is text", async ({ browser }) => {
  const room = uniqueRoom("text");
  const ada = await joinThroughHome(browser, "Ada", room);
  const bob = await joinThroughHome(browser, "Bob", room);
  await say(ada.page, "read https://example.com/docs and [the guide](https://example.com/guide), *really* **now** with `code`");
  await say(ada.page, "<script>window.pwned = 1</script><b>not bold</b>");
  await say(ada.page, "[click me](javascript:window.pwned=2)");
  await say(ada.page, "> a quote");
  await expect(messageWith(bob.page, "a quote")).toBeVisible();

  const first = messageWith(bob.page, "read ");
  const bare = first.getByRole("link", { name: "https://example.com/docs" });
  await expect(bare).toHaveAttribute("href", "https://example.com/docs");
  await expect(bare).toHaveAttribute("rel", "noopener noreferrer nofollow ugc");
  await expect(bare).toHaveAttribute("target", "_blank");
  await expect(first.getByRole("link", { name: "the guide" })).toHaveAttribute("href", "https://example.com/guide");
  await expect(first.locator("em")).toHaveText("really");
  await expect(first.locator("strong")).toHaveText("now");
  await expect(first.locator("code")).toHaveText("code");

  // HTML and javascript: links are the text that was typed.
  const html = messageWith(bob.page, "window.pwned = 1");
  await expect(html.locator(".text")).toHaveText("<script>window.pwned = 1</script><b>not bold</b>");
  await expect(html.locator("b, script")).toHaveCount(0);
  const js = messageWith(bob.page, "click me");
  await expect(js.getByRole("link")).toHaveCount(0);
  await expect(js.locator(".text")).toHaveText("[click me](javascript:window.pwned=2)");
  expect(await bob.page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
  await expect(messageWith(bob.page, "a quote").locator("blockquote")).toHaveText("a quote");
  await bob.page.screenshot({ path: "test-results/text-rendered.png" });

  // One run of Ada's messages under one name, and the day above it; full times on hover.
  await expect(bob.page.locator("li.day")).toHaveCount(1);
  await expect(bob.page.locator("li.day")).toHaveText(/^[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4}$/);
  await expect(bob.page.locator("li.msg.run")).toHaveCount(3);
  await expect(first.locator("time")).toHaveAttribute("title", /^[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d$/);

  // The server's HTML (no JavaScript) is the same markup.
  const plain = await browser.newContext({ javaScriptEnabled: false });
  const page = await plain.newPage();
  await page.goto(`/r/${room}`);
  for (const words of ["read ", "window.pwned = 1", "click me", "a quote"]) {
    expect(await textHtml(page, words)).toBe(await textHtml(bob.page, words));
  }
  await Promise.all([ada.context.close(), bob.context.close(), plain.close()]);
});
