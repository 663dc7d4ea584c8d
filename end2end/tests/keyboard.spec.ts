import { Locator, Page, expect, test } from "@playwright/test";
import { hydrated, messageWith, uniqueRoom } from "./helpers";

/** Presses Tab until `target` has the focus (as someone with only a keyboard would). */
async function tabTo(page: Page, target: Locator, limit = 30) {
  for (let i = 0; i < limit; i++) {
    if (await target.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`never reached ${target}`);
}

test("with the keyboard alone: join, send, change one's name, see the room among recent ones, invite to a private room", async ({ browser }) => {
  const room = uniqueRoom("keys");
  const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
  const page = await context.newPage();
  await page.goto("/");
  await hydrated(page);
  await tabTo(page, page.getByLabel("Your name"));
  await page.keyboard.type("Kay");
  await tabTo(page, page.getByLabel("Room", { exact: true }));
  await page.keyboard.type(room);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(new RegExp(`/r/${room}$`));
  await expect(page.getByRole("status").first()).toHaveText(/Connected/);

  await tabTo(page, page.getByLabel("Message", { exact: true }));
  await page.keyboard.type("hello by keyboard");
  await page.keyboard.press("Enter");
  await expect(messageWith(page, "hello by keyboard")).toBeVisible();

  // The name, changed from the room's header.
  await tabTo(page, page.getByRole("button", { name: /Your name: Kay/ }));
  await page.keyboard.press("Enter");
  const field = page.getByLabel("Your name", { exact: true });
  await expect(field).toBeFocused();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.type("Kai");
  await page.keyboard.press("Enter");
  await expect(page.getByRole("button", { name: /Your name: Kai/ })).toBeVisible();
  await expect(page.getByRole("status").first()).toHaveText(/Connected/);
  await tabTo(page, page.getByLabel("Message", { exact: true }));
  await page.keyboard.type("now as Kai");
  await page.keyboard.press("Enter");
  await expect(messageWith(page, "now as Kai").locator(".sender")).toHaveText("Kai");
  await page.screenshot({ path: "test-results/keyboard-renamed.png" });

  // The home page lists the room among recent ones.
  await page.goto("/");
  await hydrated(page);
  const recent = page.getByRole("navigation", { name: "Recent rooms" });
  await expect(recent.getByRole("link", { name: `#${room}` })).toBeVisible();
  await page.screenshot({ path: "test-results/keyboard-home-recent.png" });

  // A private room, and its invite link on the clipboard.
  await tabTo(page, page.getByRole("button", { name: "Create a private room" }));
  await page.keyboard.press("Enter");
  await expect(page.getByRole("status").first()).toHaveText(/Connected/);
  await tabTo(page, page.getByRole("button", { name: "Copy invite link" }));
  await page.keyboard.press("Enter");
  await expect(page.getByText("Invite link copied.")).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(page.url());
  await context.close();
});
