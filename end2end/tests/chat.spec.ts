import { test, expect } from "@playwright/test";
import { hydrated, joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

test("two people in one room chat; a third person in another room sees nothing", async ({ browser }) => {
  const room = uniqueRoom("lobby");
  const other = uniqueRoom("elsewhere");
  const alice = await joinThroughHome(browser, "Alice", room);
  const bob = await joinThroughHome(browser, "Bob", room);
  const carol = await joinThroughHome(browser, "Carol", other);

  await say(alice.page, "Hello from Alice");
  const atBob = messageWith(bob.page, "Hello from Alice");
  await expect(atBob).toHaveCount(1);
  await expect(atBob.locator(".sender")).toHaveText("Alice");
  await expect(atBob.locator("time")).toHaveText(/^\d\d:\d\d$/);

  await say(bob.page, "Hi Alice, Bob here");
  await expect(messageWith(alice.page, "Hi Alice, Bob here").locator(".sender")).toHaveText("Bob");

  // Same order for both.
  const order = async (p: typeof alice.page) => p.locator("li.msg:not(.pending) .text").allTextContents();
  await expect.poll(() => order(alice.page)).toEqual(["Hello from Alice", "Hi Alice, Bob here"]);
  await expect.poll(() => order(bob.page)).toEqual(["Hello from Alice", "Hi Alice, Bob here"]);

  // Carol's own message arrives, and nothing from the other room ever did.
  await say(carol.page, "Anyone here?");
  await expect(messageWith(carol.page, "Anyone here?")).toHaveCount(1);
  await expect(carol.page.locator("li.msg")).toHaveCount(1);
  await expect(messageWith(carol.page, "Hello from Alice")).toHaveCount(0);

  for (const p of [alice, bob, carol]) await p.context.close();
});

test("the name is remembered, and a shared room link asks for a name first", async ({ browser }) => {
  const room = uniqueRoom("link");
  const dana = await joinThroughHome(browser, "Dana", room);
  // A second tab of the same browser: the home page fills in the remembered name.
  const tab = await dana.context.newPage();
  await tab.goto("/");
  await hydrated(tab);
  await expect(tab.getByLabel("Your name")).toHaveValue("Dana");
  await tab.close();

  // Someone new opens the link directly.
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`/r/${room}`);
  await hydrated(page);
  await page.getByLabel("Choose a name to join").fill("Eli");
  await page.getByRole("button", { name: "Join" }).click();
  await expect(page.getByRole("status")).toHaveText(/Connected/);
  await say(page, "Eli arrived");
  await expect(messageWith(dana.page, "Eli arrived").locator(".sender")).toHaveText("Eli");

  await dana.context.close();
  await context.close();
});

test("invalid input gets a clear message and nothing is sent", async ({ browser }) => {
  const room = uniqueRoom("rules");
  const fay = await joinThroughHome(browser, "Fay", room);
  await say(fay.page, "   ");
  await expect(fay.page.getByRole("alert").filter({ hasText: "Type a message first." })).toBeVisible();
  await expect(fay.page.locator("li.msg")).toHaveCount(0);

  const home = await browser.newContext();
  const page = await home.newPage();
  await page.goto("/");
  await hydrated(page);
  await page.getByLabel("Your name").fill("Gus");
  await page.getByLabel("Room", { exact: true }).fill("no/slashes");
  await page.getByRole("button", { name: "Join room" }).click();
  await expect(page.getByRole("alert").first()).toHaveText(/letters, digits/);
  await expect(page).toHaveURL(/\/$/);

  await fay.context.close();
  await home.close();
});
