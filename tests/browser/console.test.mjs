// The web console in a real browser: the seed's flow (sign in, source, mapping, synchronization, Run
// now, contracts) against the pet-store fixture, plus the empty state, a template error on its field,
// a failing source test, the session and CSRF rules, and the phone layout. run.sh starts the servers.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const BASE = process.env.CONSOLE_URL;
const KEY = process.env.CONSOLE_KEY;
const FIXTURE = process.env.FIXTURE_URL;
const SHOTS = process.env.SCREENSHOTS;
assert.ok(BASE && KEY && FIXTURE, "run me through tests/browser/run.sh");
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", "--disable-dev-shm-usage"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(20_000);
// Deletes ask for confirmation: say yes, as a person would.
page.on("dialog", (dialog) => dialog.accept());
const scriptErrors = [];
page.on("pageerror", (error) => scriptErrors.push(error.message));

let failed = 0;
async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(error.stack ?? error).split("\n").slice(0, 6).join("\n     ")}`);
    if (SHOTS) await page.screenshot({ path: `${SHOTS}/../failure-${name.replace(/\W+/g, "-")}.png` }).catch(() => {});
  }
}

async function shot(name) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

const text = (selector) => page.locator(selector).innerText();
// The seed's endpoint returns the fixture's available pets (run.sh serves 10,000 of them).
const available = (await (await fetch(`${FIXTURE}/pet/findByStatus?status=available`)).json()).length;

await step("a wrong key gets no session", async () => {
  await page.goto(`${BASE}/`);
  assert.match(page.url(), /\/login$/);
  await page.getByLabel("API key").fill("not-the-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That key is not valid.").waitFor();
  assert.equal((await context.cookies()).length, 0);
});

await step("sign in: an HttpOnly cookie, the key nowhere in the page, URL or storage", async () => {
  await page.getByLabel("API key").fill(KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  const [cookie, ...others] = await context.cookies();
  assert.equal(others.length, 0);
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.ok(!cookie.value.includes(KEY));
  assert.ok(!page.url().includes(KEY));
  assert.ok(!(await page.content()).includes(KEY));
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.ok(!stored.includes(KEY) && !stored.includes(cookie.value), "nothing readable by scripts");
});

await step("a fresh install: every list shows No items found", async () => {
  for (const [path, add] of [["/sources", "Add source"], ["/mappings", "Add mapping"], ["/synchronizations", "Add synchronization"], ["/registers", "Add register"], ["/jobs", null]]) {
    await page.goto(`${BASE}${path}`);
    await page.getByText("No items found").waitFor();
    await page.getByRole("searchbox").waitFor();
    if (add) await page.getByRole("link", { name: add }).waitFor();
  }
});

await step("a change with the cookie but without the CSRF token is refused", async () => {
  const status = await page.evaluate(async () => {
    const response = await fetch("/api/registers", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "forged" }) });
    return response.status;
  });
  assert.equal(status, 403);
  const read = await page.evaluate(async () => (await fetch("/api/registers")).status);
  assert.equal(read, 200, "reads need no token");
});

await step("a failing source test shows its error", async () => {
  await page.goto(`${BASE}/sources/new`);
  await page.getByLabel("Name", { exact: true }).fill("Closed port");
  await page.getByLabel("Location").fill("http://127.0.0.1:9/api");
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/sources\/closed-port/);
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.locator("#test-result.bad").waitFor();
  assert.match(await text("#test-result"), /^FAILED \[connection\].*127\.0\.0\.1:9/);
  await page.getByRole("button", { name: "Delete" }).click();
  await page.waitForURL(/\/sources$/);
  await page.getByText("No items found").waitFor();
});

await step("add a source and test it", async () => {
  await page.getByRole("link", { name: "Add source" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Swagger Pet Store");
  await page.getByLabel("Connector type").selectOption("api");
  await page.getByLabel("Description").fill("The pet store standing in for a real source");
  await page.getByLabel("Location").fill(FIXTURE);
  await page.getByLabel("Authentication").selectOption("none");
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/sources\/swagger-pet-store/);
  await page.getByText("Created.").waitFor();
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.locator("#test-result.ok").waitFor();
  assert.match(await text("#test-result"), /^OK — OK: HTTP 200/);
  // Secrets are write-only: choosing bearer shows the token field as not set.
  await page.getByLabel("Authentication").selectOption("bearer");
  await page.getByText("Token (not set)").waitFor();
  await page.getByLabel("Authentication").selectOption("none");
});

await step("add the Pet to dataset mapping and test it", async () => {
  await page.goto(`${BASE}/mappings`);
  await page.getByRole("link", { name: "Add mapping" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Pet to dataset");
  for (const [field, template] of [["title", "{{ name }}"], ["category", "{{ category.name }}"], ["status", "Published"]]) {
    await page.getByRole("button", { name: "Add field" }).click();
    const row = page.locator("#mapping-rows tbody tr").last();
    await row.getByLabel("Target field").fill(field);
    await row.getByLabel("Template").fill(template);
  }
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/mappings\/pet-to-dataset/);
  assert.deepEqual(await page.locator("#mapping-rows .field").evaluateAll((inputs) => inputs.map((i) => i.value)), ["title", "category", "status"]);
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.locator("#mapping-result pre").waitFor();
  assert.deepEqual(JSON.parse(await text("#mapping-result pre")), { title: "Bella", category: "Dogs", status: "Published" });
  await shot("mapping-test");
});

await step("a template error is shown on its field", async () => {
  await page.getByRole("button", { name: "Add field" }).click();
  const row = page.locator("#mapping-rows tbody tr").last();
  await row.getByLabel("Target field").fill("broken");
  await row.getByLabel("Template").fill("{{ name | }}");
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.locator("#mapping-result .alert").waitFor();
  assert.match(await row.getAttribute("class"), /invalid/);
  assert.equal(await row.getByLabel("Template").getAttribute("aria-invalid"), "true");
  assert.match(await row.locator(".field-error").innerText(), /broken/);
  await shot("mapping-error");
  await row.getByRole("button", { name: "Remove this row" }).click();
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.locator("#mapping-result pre").waitFor();
});

await step("add the dcat register", async () => {
  await page.goto(`${BASE}/registers/new`);
  await page.getByLabel("Name", { exact: true }).fill("dcat");
  await page.getByLabel(/Schemas/).fill(JSON.stringify({ dataset: { type: "object", properties: { title: { type: "string" } }, required: ["title"] } }));
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/registers\/dcat/);
});

await step("add the synchronization", async () => {
  await page.goto(`${BASE}/synchronizations`);
  await page.getByRole("link", { name: "Add synchronization" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Pet store to datasets");
  await page.getByLabel("Source", { exact: true }).selectOption("swagger-pet-store");
  await page.getByLabel("Endpoint").fill("/pet/findByStatus?status=available");
  await page.getByLabel("Results position").fill("_root");
  await page.getByLabel("Id position").fill("id");
  await page.getByLabel("Mapping", { exact: true }).selectOption("pet-to-dataset");
  await page.getByLabel("Target (register / schema)").selectOption("dcat/dataset");
  // Manual, as the seed says for a first run (a schedule that never ran is due at once).
  await page.getByLabel("Schedule").selectOption("manual");
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/synchronizations\/pet-store-to-datasets/);
  assert.equal(await text("#next-run"), "—");
});

await step("the source page previews the first records with idPosition applied", async () => {
  await page.goto(`${BASE}/sources/swagger-pet-store`);
  await page.getByRole("button", { name: "Preview first records" }).click();
  await page.locator("#preview h3").first().waitFor();
  assert.match(await page.locator("#preview h3").first().innerText(), /, id 1$/);
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.locator("#test-result.ok").waitFor();
  await shot("source");
  await page.goto(`${BASE}/sources`);
  assert.match(await text("table.list tbody tr"), /active\s+OK /);
  await shot("sources");
});

await step("Run now: Running…, then Done with the right counts", async () => {
  await page.goto(`${BASE}/synchronizations/pet-store-to-datasets`);
  // Every text the status line shows, to check that it said Running… before Done.
  await page.evaluate(() => {
    window.seen = [];
    const line = document.getElementById("run-status");
    new MutationObserver(() => window.seen.push(line.textContent)).observe(line, { childList: true, characterData: true, subtree: true });
  });
  await page.getByRole("button", { name: "Run now" }).click();
  await page.locator("#run-status.ok").waitFor({ timeout: 120_000 });
  assert.ok((await page.evaluate(() => window.seen)).some((t) => t.startsWith("Running…")), "a progress line while it runs");
  assert.equal((await text("#run-status")).replace(/\s*job$/, ""), `Done — ${available} created, 0 updated, 0 errors`);
  // The list of last runs is refreshed from the server when the run ends.
  await page.locator("#runs tbody tr").first().waitFor();
  await shot("synchronization-done");
  await page.reload();
  await page.getByRole("button", { name: "Run now" }).click();
  await page.locator("#run-status.ok").waitFor({ timeout: 120_000 });
  assert.match(await text("#run-status"), /^Done — 0 created, 0 updated, 0 errors/, "a second run changes nothing");
  await page.waitForFunction(() => document.querySelectorAll("#runs tbody tr").length === 2);
});

await step("contracts: search, paging, delete one", async () => {
  await page.getByRole("link", { name: "Contracts" }).click();
  await page.waitForURL(/\/contracts/);
  const shown = Math.min(50, available);
  assert.equal(await text("#contract-count"), `1–${shown} of ${available}`);
  await shot("contracts");
  if (available > 50) {
    const started = Date.now();
    await page.getByRole("link", { name: "Next ›" }).click();
    await page.waitForURL(/offset=50/);
    const took = Date.now() - started;
    assert.equal(await text("#contract-count"), `51–${Math.min(100, available)} of ${available}`);
    assert.ok(took < 1000, `the second page of ${available} contracts took ${took} ms`);
    await page.getByRole("link", { name: "‹ Previous" }).click();
    await page.waitForURL(/offset=0/);
  }
  await page.getByLabel("Search origin ids").fill("7");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/q=7/);
  const origins = await page.locator("#contracts tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.origin));
  assert.ok(origins.length > 0 && origins.every((o) => o.includes("7")), origins.join(","));
  await page.getByRole("button", { name: "Delete contract 7", exact: true }).click();
  await page.locator("#contract-status.ok").waitFor();
  await page.reload();
  assert.equal(await page.locator('#contracts tr[data-origin="7"]').count(), 0);
});

await step("run again: 1 created", async () => {
  await page.goto(`${BASE}/synchronizations/pet-store-to-datasets`);
  await page.getByRole("button", { name: "Run now" }).click();
  await page.locator("#run-status.ok").waitFor({ timeout: 120_000 });
  assert.match(await text("#run-status"), /^Done — 1 created, 0 updated, 0 errors/);
});

await step("the synchronization's runs as a chart: a bar per run with its numbers", async () => {
  await page.goto(`${BASE}/synchronizations/pet-store-to-datasets`);
  const chart = page.locator("#run-charts svg.chart").first();
  await chart.waitFor();
  assert.match(await chart.getAttribute("aria-label"), /records per run by outcome, last 3 run\(s\)$/);
  const tips = await page.locator("#run-charts svg.chart").first().locator("rect.hit title").allTextContents();
  assert.equal(tips.length, 3, tips.join(" | "));
  assert.match(tips[0], new RegExp(`COMPLETED · ${available} created · 0 updated`));
  assert.match(tips[2], /COMPLETED · 1 created/);
  assert.equal(await page.locator("#run-charts svg.chart").count(), 2, "outcomes and records a second");
  const box = await chart.boundingBox();
  assert.ok(box.width > 300 && box.height > 80, JSON.stringify(box));
  await page.locator("#run-charts").screenshot(SHOTS ? { path: `${SHOTS}/synchronization-charts.png` } : {});
});

await step("a daily schedule shows its next planned run", async () => {
  await page.goto(`${BASE}/synchronizations/pet-store-to-datasets`);
  await page.getByLabel("Schedule").selectOption("daily");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator(".form-status.ok").waitFor();
  assert.match(await text("#next-run"), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await page.reload();
  assert.equal(await page.getByLabel("Schedule").inputValue(), "daily");
  assert.match(await text("#next-run"), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
});

await step("the mapping's test pane maps a record fetched through a synchronization", async () => {
  await page.goto(`${BASE}/mappings/pet-to-dataset`);
  await page.getByLabel("Or a record from a synchronization's source").selectOption({ label: "pet-store-to-datasets (swagger-pet-store)" });
  await page.getByRole("button", { name: "Fetch first record" }).click();
  await page.waitForFunction(() => document.getElementById("sample").value.includes("Max 1"));
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.locator("#mapping-result pre").waitFor();
  assert.deepEqual(JSON.parse(await text("#mapping-result pre")), { title: "Max 1", category: "Cats", status: "Published" });
});

await step("the synchronizations list shows the last run", async () => {
  await page.goto(`${BASE}/synchronizations`);
  await page.locator("table.list tbody tr .badge.completed").waitFor();
});

await step("jobs and their logs", async () => {
  await page.goto(`${BASE}/jobs`);
  assert.equal(await page.locator("table.list tbody tr").count(), 3);
  await page.locator("table.list tbody tr a").first().click();
  await page.getByRole("heading", { name: /Job/ }).waitFor();
  await page.getByText("COMPLETED").first().waitFor();
});

await step("objects of a schema, with provenance and audit trail", async () => {
  await page.goto(`${BASE}/registers/dcat/schemas/dataset`);
  // Deleting a contract leaves its object; the re-run writes pet 7 again.
  const [, shown, total] = /^1–(\d+) of (\d+)$/.exec(await text("main p.muted"));
  assert.ok([available, available + 1].includes(Number(total)) && Number(shown) === Math.min(50, Number(total)), `${shown} of ${total}`);
  await page.locator("table.list tbody tr a").first().click();
  await page.getByRole("heading", { name: "Audit trail" }).waitFor();
  await page.getByRole("link", { name: "pet-store-to-datasets" }).first().waitFor();
  await page.getByRole("cell", { name: "create" }).first().waitFor();
});

await step("the dashboard counts, last runs and source health", async () => {
  await page.goto(`${BASE}/`);
  const tiles = await text(".tiles");
  assert.match(tiles, /^1\s+sources/);
  assert.match(tiles, new RegExp(`${available}\\s+contracts`));
  await page.locator(".badge.completed").first().waitFor();
  const charts = page.locator("#run-charts figure");
  assert.equal(await charts.count(), 1, "one synchronization, one chart");
  assert.equal(await charts.first().locator("svg.chart").count(), 2, "records by outcome and duration");
  assert.equal(await charts.first().locator("svg.chart").first().locator("rect.hit").count(), 3);
  await shot("dashboard");
});

await step("the SQL page answers a query over the register and refuses a write", async () => {
  await page.getByRole("link", { name: "SQL" }).click();
  await page.getByLabel(/^Query/).fill("SELECT category, count(*) AS n FROM dcat.dataset GROUP BY category ORDER BY n DESC, category");
  await page.getByRole("button", { name: "Run query" }).click();
  await page.locator("#sql-result").waitFor();
  const headers = await page.locator("#sql-result th").allTextContents();
  assert.deepEqual(headers, ["category", "n"]);
  const counts = await page.locator("#sql-result tbody tr td:nth-child(2)").allTextContents();
  assert.equal(counts.map(Number).reduce((a, b) => a + b, 0), available, counts.join(","));
  await shot("sql");
  await page.getByLabel(/^Query/).fill("DELETE FROM jobs");
  await page.getByRole("button", { name: "Run query" }).click();
  await page.locator("#sql-error").waitFor();
  assert.match(await text("#sql-error"), /DML not supported/);
});

await step("the phone layout does not scroll sideways", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/", "/synchronizations/pet-store-to-datasets", "/mappings/pet-to-dataset"]) {
    await page.goto(`${BASE}${path}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 392, `${path} is ${wide}px wide`);
  }
  await page.goto(`${BASE}/`);
  await shot("dashboard-phone");
  await page.setViewportSize({ width: 1280, height: 800 });
});

await step("every control has a label", async () => {
  for (const path of ["/sources/swagger-pet-store", "/mappings/pet-to-dataset", "/synchronizations/pet-store-to-datasets", "/synchronizations/pet-store-to-datasets/contracts"]) {
    await page.goto(`${BASE}${path}`);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
        .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || (el.tagName === "BUTTON" && el.textContent.trim())))
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unlabelled, [], path);
  }
});

await step("Cancel stops a running synchronization", async () => {
  await page.goto(`${BASE}/synchronizations/pet-store-to-datasets`);
  await page.getByRole("button", { name: "Run with force full sync" }).click();
  // Rewriting every object takes a while with thousands of them; Cancel shows as soon as it starts.
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator("#run-status.bad").waitFor({ timeout: 120_000 });
  assert.match(await text("#run-status"), /^Cancelled — /);
  await page.locator("#runs .badge.cancelled").waitFor();
});

await step("sign out ends the session", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login$/);
  await page.goto(`${BASE}/sources`);
  assert.match(page.url(), /\/login$/);
  const status = await page.evaluate(async () => (await fetch("/api/sources")).status);
  assert.equal(status, 401);
});

await browser.close();
if (scriptErrors.length) {
  failed += 1;
  console.log(`FAIL script errors in the pages:\n     ${scriptErrors.join("\n     ")}`);
}
console.log(failed ? `${failed} browser test(s) failed` : "all browser tests passed");
process.exit(failed ? 1 : 0);
