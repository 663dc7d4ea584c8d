import { execFileSync } from "node:child_process";
import { Browser, expect, test } from "@playwright/test";
import { AUTH_PORT, AUTH_SECRET } from "../playwright.config";
import { hydrated, messageWith, say, uniqueRoom } from "./helpers";

/** The sign-in server: `--auth required`, so only signed-in people read and chat. */
const AUTH = `http://127.0.0.1:${AUTH_PORT}`;

/** A token signed by the server's own command, as an admin hands them out. */
function token(sub: string, name: string, ttl = "1h"): string {
  return execFileSync("target/debug/server", ["token", "--sub", sub, "--name", name, "--ttl", ttl], {
    cwd: "..",
    env: { ...process.env, PALAVER_AUTH_SECRET: AUTH_SECRET },
  })
    .toString()
    .trim();
}

/** A phone in dark mode. */
const PHONE = { viewport: { width: 390, height: 844 }, colorScheme: "dark" as const, isMobile: true, hasTouch: true };

/** A person who opens a sign-in link that leads into `room`. */
async function signIn(browser: Browser, sub: string, name: string, room: string, ttl = "1h", options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await page.goto(`${AUTH}/signin#token=${token(sub, name, ttl)}&next=/r/${room}`);
  await expect(page).toHaveURL(`${AUTH}/r/${room}`);
  await hydrated(page);
  await expect(page.getByRole("status")).toHaveText(/Connected/);
  return { context, page };
}

test("a guest is told to sign in, and a sign-in link gets a person in as verified", async ({ browser }) => {
  const room = uniqueRoom("members");
  const guest = await browser.newPage();
  await guest.goto(`${AUTH}/r/${room}`);
  await expect(guest.getByRole("heading", { name: "Sign in to read this room" })).toBeVisible();
  await expect(guest.getByText("Only signed-in people can read it.")).toBeVisible();

  const ada = await signIn(browser, "u-ada", "Ada", room);
  const account = ada.page.getByLabel("Your account");
  await expect(account).toContainText("Ada");
  await expect(account.getByRole("img", { name: "verified" })).toBeVisible();
  // The address bar no longer holds the token.
  expect(ada.page.url()).not.toContain("token=");
  await say(ada.page, "Hello from a verified account");

  const bo = await signIn(browser, "u-bo", "Bo", room, "1h", PHONE);
  const hers = messageWith(bo.page, "Hello from a verified account");
  await expect(hers).toBeVisible();
  await expect(hers.getByRole("img", { name: "verified" })).toBeVisible();
  await ada.page.screenshot({ path: "test-results/identity-verified-desktop-light.png" });
  await bo.page.getByText(/\d+ online/).click();
  await expect(bo.page.getByRole("list", { name: "Online now" }).getByText("Ada")).toBeVisible();
  await bo.page.screenshot({ path: "test-results/identity-verified-phone-dark.png" });

  // Signing out: the cookie goes, and the room is closed to the guest she is now.
  await ada.page.getByRole("button", { name: "Sign out" }).click();
  await expect(ada.page.getByRole("heading", { name: "Sign in to read this room" })).toBeVisible();
  await ada.context.close();
  await bo.context.close();
});

test("a bad sign-in link says why", async ({ page }) => {
  await page.goto(`${AUTH}/signin#token=not-a-token`);
  await expect(page.getByRole("alert")).toContainText("not a valid token");
  await expect(page.getByRole("link", { name: "Continue as a guest" })).toBeVisible();
});

test("an expired sign-in asks to sign in again and keeps what was typed", async ({ browser }) => {
  const room = uniqueRoom("expiry");
  const { context, page } = await signIn(browser, "u-cy", "Cy", room, "6s");
  const box = page.getByLabel("Message", { exact: true });
  await box.fill("typed while signed in");
  await expect(page.getByText(/Your sign-in has expired/)).toBeVisible({ timeout: 15_000 });
  await expect(page.getByRole("status")).toHaveText(/Not connected/);
  await expect(box).toHaveValue("typed while signed in");
  await box.press("Enter");
  await expect(page.locator("li.msg.pending", { hasText: "typed while signed in" })).toBeVisible();
  await expect(page.getByText("What you wrote is kept here")).toBeVisible();
  await page.screenshot({ path: "test-results/identity-expired.png" });

  // A fresh link in another tab, then back: the message goes out.
  const tab = await context.newPage();
  await tab.goto(`${AUTH}/signin#token=${token("u-cy", "Cy")}`);
  await expect(tab).toHaveURL(`${AUTH}/`);
  await page.bringToFront();
  await page.getByRole("button", { name: "Try again" }).click();
  await expect(page.getByRole("status")).toHaveText(/Connected/);
  await expect(messageWith(page, "typed while signed in")).toBeVisible();
  await context.close();
});

test("a guest who creates a private room owns it and makes it read-only for others", async ({ browser }) => {
  const owner = await browser.newContext();
  const page = await owner.newPage();
  await page.goto("/");
  await hydrated(page);
  await page.getByLabel("Your name").fill("Owner");
  await page.getByRole("button", { name: "Create a private room" }).click();
  await expect(page).toHaveURL(/\/r\/[0-9a-f]{64}$/);
  await expect(page.getByRole("status")).toHaveText(/Connected/);
  await say(page, "Rules coming");
  await expect(messageWith(page, "Rules coming")).toBeVisible();

  await page.getByText("Room settings").click();
  await page.getByLabel("Who may post").selectOption("moderators");
  await page.getByRole("button", { name: "Save rules" }).click();
  await expect(page.getByText("Saved.")).toBeVisible();
  await page.screenshot({ path: "test-results/identity-room-settings.png" });

  // Someone else with the link reads, and is told they cannot post.
  const reader = await browser.newContext(PHONE);
  const other = await reader.newPage();
  await other.goto(page.url());
  await hydrated(other);
  await other.getByLabel("Choose a name to join").fill("Reader");
  await other.getByRole("button", { name: "Join" }).click();
  await expect(other.getByText("You can read this room; only some people may post in it.")).toBeVisible();
  await expect(messageWith(other, "Rules coming")).toBeVisible();
  await expect(other.getByText("Room settings")).toHaveCount(0);
  await other.screenshot({ path: "test-results/identity-read-only-phone-dark.png" });

  // The owner still posts.
  await say(page, "Announcement");
  await expect(messageWith(other, "Announcement")).toBeVisible();
  await owner.close();
  await reader.close();
});
