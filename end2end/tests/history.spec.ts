import { test, expect, Page } from "@playwright/test";
import { hydrated, joinThroughHome, messageWith, postMany, say, uniqueRoom } from "./helpers";

/** Texts of the delivered messages on a page, in display order. */
const texts = (p: Page) => p.locator("li.msg:not(.pending) .text").allTextContents();

test("history is in the server-rendered page and readable without JavaScript", async ({ browser }) => {
  const room = uniqueRoom("nojs");
  const ada = await joinThroughHome(browser, "Ada", room);
  await say(ada.page, "Rendered on the server");
  await say(ada.page, "<b>and still text</b>");
  await expect(messageWith(ada.page, "and still text")).toHaveCount(1);

  const noJs = await browser.newContext({ javaScriptEnabled: false });
  const page = await noJs.newPage();
  await page.goto(`/r/${room}`);
  await expect(page.getByRole("heading", { name: `#${room}` })).toBeVisible();
  await expect(messageWith(page, "Rendered on the server").locator(".sender")).toHaveText("Ada");
  await expect(messageWith(page, "<b>and still text</b>")).toHaveCount(1);
  await expect(page.locator("b", { hasText: "and still text" })).toHaveCount(0);

  await ada.context.close();
  await noJs.close();
});

test("someone offline misses messages, comes back, and sees each once in order; their offline message is sent once", async ({ browser }) => {
  const room = uniqueRoom("offline");
  const ada = await joinThroughHome(browser, "Ada", room);
  const bob = await joinThroughHome(browser, "Bob", room);
  await say(ada.page, "before");
  await expect(messageWith(bob.page, "before")).toHaveCount(1);

  await bob.context.setOffline(true);
  await expect(bob.page.getByRole("status")).toHaveText(/Offline/);
  for (const t of ["missed 1", "missed 2", "missed 3"]) await say(ada.page, t);
  await say(bob.page, "typed while offline");
  await expect(bob.page.locator("li.msg.pending", { hasText: "typed while offline" })).toContainText("Waiting to send");

  await bob.context.setOffline(false);
  await expect(bob.page.getByRole("status")).toHaveText(/Connected/);
  const expected = ["before", "missed 1", "missed 2", "missed 3", "typed while offline"];
  await expect.poll(() => texts(bob.page)).toEqual(expected);
  await expect.poll(() => texts(ada.page)).toEqual(expected);
  await expect(bob.page.locator("li.msg.pending")).toHaveCount(0);

  // A reload resumes from the rendered history: still each message once.
  await bob.page.reload();
  await hydrated(bob.page);
  await expect(bob.page.getByRole("status")).toHaveText(/Connected/);
  await expect.poll(() => texts(bob.page)).toEqual(expected);

  await ada.context.close();
  await bob.context.close();
});

test("the roster shows who is online and removes people who leave", async ({ browser }) => {
  const room = uniqueRoom("roster");
  const ada = await joinThroughHome(browser, "Ada", room);
  const bob = await joinThroughHome(browser, "Bob", room);

  const roster = ada.page.locator("details.roster");
  await expect(roster.locator("summary")).toHaveText("2 online");
  await roster.locator("summary").click();
  await expect(roster.getByRole("listitem")).toHaveText(["Ada", "Bob"]);
  await expect(ada.page.locator("li.notice", { hasText: "Bob joined" })).toHaveCount(1);

  await bob.context.close();
  await expect(roster.locator("summary")).toHaveText("1 online");
  await expect(roster.getByRole("listitem")).toHaveText(["Ada"]);
  await expect(ada.page.locator("li.notice", { hasText: "Bob left" })).toHaveCount(1);
  await ada.context.close();
});

test("scrolling up loads older history page by page, down to the first message, without jumping", async ({ browser }) => {
  const room = uniqueRoom("scroll");
  const ada = await joinThroughHome(browser, "Ada", room);
  // 230 messages straight over a WebSocket from the page, faster than typing them.
  await postMany(ada.page, room, 230, "bulk");

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`/r/${room}`);
  await hydrated(page);
  await expect(page.locator("li.msg")).toHaveCount(100);
  await expect(page.locator("li.msg").first()).toContainText("bulk 131");
  await expect(page.locator("li.msg").last()).toContainText("bulk 230");

  // Scroll to the top: the previous 100 load above, and the message that was first stays in view.
  const anchor = messageWith(page, "bulk 131");
  await page.locator(".messages").evaluate((el) => (el.scrollTop = 0));
  await expect(page.locator("li.msg")).toHaveCount(200);
  await expect(anchor).toBeInViewport();

  await page.locator(".messages").evaluate((el) => (el.scrollTop = 0));
  await expect(page.locator("li.msg")).toHaveCount(230);
  await expect(page.locator("li.msg").first()).toContainText("bulk 1");
  await expect(page.getByText(`This is the beginning of #${room}.`)).toBeVisible();

  await ada.context.close();
  await context.close();
});

test("without JavaScript the page is honest and every older page is a link, down to message 1", async ({ browser }) => {
  const room = uniqueRoom("pages");
  const ada = await joinThroughHome(browser, "Ada", room);
  await postMany(ada.page, room, 230, "page");

  const noJs = await browser.newContext({ javaScriptEnabled: false });
  const page = await noJs.newPage();
  await page.goto(`/r/${room}`);
  await expect(page.locator("li.msg")).toHaveCount(100);
  await expect(page.locator("li.msg").first()).toContainText("page 131");
  // Nothing that needs JavaScript: no endless "Connecting…", no composer that cannot send.
  await expect(page.getByText("Connecting…")).toBeHidden();
  await expect(page.getByLabel("Message", { exact: true })).toBeHidden();
  // (Playwright's text search skips <noscript>, so by its class.)
  await expect(page.locator("p.noscript")).toBeVisible();
  await expect(page.locator("p.noscript")).toContainText("To chat, turn JavaScript on.");
  await page.screenshot({ path: "test-results/history-no-js.png" });

  await page.getByRole("link", { name: "Load older messages" }).click();
  await expect(page).toHaveURL(new RegExp(`/r/${room}\\?before=131$`));
  await expect(page.locator("li.msg")).toHaveCount(100);
  await expect(page.locator("li.msg").first()).toContainText("page 31");
  await expect(page.locator("li.msg").last()).toContainText("page 130");
  await page.getByRole("link", { name: "Load older messages" }).click();
  await expect(page.locator("li.msg")).toHaveCount(30);
  await expect(page.locator("li.msg").first()).toContainText("page 1");
  await expect(page.getByText(`This is the beginning of #${room}.`)).toBeVisible();
  await page.getByRole("link", { name: "Newest messages ↓" }).click();
  await expect(page.locator("li.msg").last()).toContainText("page 230");
  await Promise.all([ada.context.close(), noJs.close()]);
});
