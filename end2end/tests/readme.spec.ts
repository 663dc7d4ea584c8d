import { Browser, expect, test } from "@playwright/test";
import { joinFrom, joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

/** Joins `room` as `name` in a context of its own. */
async function join(browser: Browser, name: string, room: string, options: object) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await joinFrom(page, name, room);
  return { context, page };
}

// The README's pictures of the room page, taken on every run so they show the product as it is.
test("README screenshots: the room page on a desktop (light) and a phone (dark)", async ({ browser }) => {
  const room = uniqueRoom("welcome");
  const ada = await joinThroughHome(browser, "Ada", room);
  await say(ada.page, "Welcome! Everything here is **stored before it is shown**, and nothing arrives twice.");
  await say(ada.page, "Links work: https://example.com — and `code` and *emphasis* too.");
  const bob = await joinThroughHome(browser, "Bob", room);
  await say(bob.page, "Hi @Cy, reconnecting on the train was seamless.");
  await say(bob.page, "Even the message I typed while offline came through, once.");
  await expect(messageWith(ada.page, "came through")).toBeVisible();

  const cy = await join(browser, "Cy", room, { viewport: { width: 1200, height: 720 }, colorScheme: "light" });
  const dee = await join(browser, "Dee", room, { viewport: { width: 390, height: 760 }, colorScheme: "dark", isMobile: true, hasTouch: true });
  await ada.page.getByLabel("Message", { exact: true }).pressSequentially("Glad to hear");
  for (const p of [cy.page, dee.page]) {
    await expect(p.locator("li.msg")).toHaveCount(4);
    await expect(p.locator("p.typing")).toHaveText("Ada is typing…");
  }
  await cy.page.screenshot({ path: "../docs/screenshots/room-desktop.png" });
  await dee.page.screenshot({ path: "../docs/screenshots/room-phone.png" });
  await Promise.all([ada.context.close(), bob.context.close(), cy.context.close(), dee.context.close()]);
});
