import { Page, expect, test } from "@playwright/test";
import { joinFrom, joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

async function setHidden(page: Page, hidden: boolean) {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    document.dispatchEvent(new Event("visibilitychange", { bubbles: true }));
  }, hidden);
}

test("desktop notifications are opt-in per room: for mentions, then for everything, only while hidden", async ({ browser }) => {
  const room = uniqueRoom("notify");
  const ada = await joinThroughHome(browser, "Ada", room);
  const context = await browser.newContext({ permissions: ["notifications"] });
  // Every notification the page shows is also written down here (the real one is still made).
  await context.addInitScript(() => {
    const Real = window.Notification;
    const shown: { title: string; body?: string }[] = [];
    (window as unknown as { shown: typeof shown }).shown = shown;
    class Recorded extends Real {
      constructor(title: string, options?: NotificationOptions) {
        super(title, options);
        shown.push({ title, body: options?.body });
      }
    }
    Object.defineProperty(window, "Notification", { value: Recorded });
  });
  const page = await context.newPage();
  await joinFrom(page, "Bob", room);
  const shown = () => page.evaluate(() => (window as unknown as { shown: { title: string; body?: string }[] }).shown);

  // Off by default: nothing.
  await setHidden(page, true);
  await say(ada.page, "nobody is told of this");
  await expect(messageWith(page, "nobody is told")).toHaveCount(1);
  expect(await shown()).toEqual([]);

  // Mentions only.
  await setHidden(page, false);
  await page.getByLabel("Desktop notifications for this room").selectOption("mentions");
  await setHidden(page, true);
  await say(ada.page, "still nothing");
  await say(ada.page, "but **@Bob** look");
  await expect(messageWith(page, "look")).toHaveCount(1);
  await expect.poll(shown).toEqual([{ title: `Ada in #${room}`, body: "but @Bob look" }]);

  // Everything, and nothing while the page is in front.
  await setHidden(page, false);
  await page.getByLabel("Desktop notifications for this room").selectOption("all");
  await say(ada.page, "seen anyway");
  await expect(messageWith(page, "seen anyway")).toHaveCount(1);
  await setHidden(page, true);
  await say(ada.page, "any message");
  await expect.poll(async () => (await shown()).length).toBe(2);
  expect((await shown())[1].body).toBe("any message");
  // The choice is kept for this room.
  await page.reload();
  await expect(page.getByLabel("Desktop notifications for this room")).toHaveValue("all");
  await Promise.all([ada.context.close(), context.close()]);
});
