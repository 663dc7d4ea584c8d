import AxeBuilder from "@axe-core/playwright";
import { Browser, Page, expect, test } from "@playwright/test";
import { hydrated, joinFrom, joinThroughHome, say, uniqueRoom } from "./helpers";

/** axe-core's violations on the page as it is, in a readable form. */
async function violations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join(", ")}`,
  );
}

const VIEWS = {
  "desktop light": { viewport: { width: 1280, height: 800 }, colorScheme: "light" as const },
  "desktop dark": { viewport: { width: 1280, height: 800 }, colorScheme: "dark" as const },
  "phone dark": { viewport: { width: 390, height: 844 }, colorScheme: "dark" as const, isMobile: true, hasTouch: true },
  "phone light": { viewport: { width: 390, height: 844 }, colorScheme: "light" as const, isMobile: true, hasTouch: true },
};

async function roomWithConversation(browser: Browser): Promise<string> {
  const room = uniqueRoom("a11y");
  const ada = await joinThroughHome(browser, "Ada", room);
  await say(ada.page, "Hello, see https://example.com and *this* with `code`");
  await say(ada.page, "> a quote\n\nand an answer @Bob");
  await expect(ada.page.locator("li.msg:not(.pending)")).toHaveCount(2);
  await ada.context.close();
  return room;
}

for (const [name, options] of Object.entries(VIEWS)) {
  test(`axe finds no violations on the home and room pages (${name})`, async ({ browser }) => {
    const room = await roomWithConversation(browser);
    const context = await browser.newContext(options);
    const page = await context.newPage();
    await page.goto("/");
    await hydrated(page);
    expect(await violations(page), "home page").toEqual([]);

    await joinFrom(page, "Bob", room);
    await expect(page.locator("li.msg")).toHaveCount(2);
    expect(await violations(page), "room page").toEqual([]);
    await page.screenshot({ path: `test-results/a11y-room-${name.replace(" ", "-")}.png` });
    await context.close();
  });
}
