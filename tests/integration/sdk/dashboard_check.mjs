// dashboard_check.mjs - open llmgate's dashboard in headless Chromium (Debian's, driven by
// puppeteer-core) and report what the page shows, for test_dashboard.py to compare with the
// store. Usage: node dashboard_check.mjs URL TOKEN SCREENSHOT.png
// Prints one JSON object: keys (per row: state text and data-values), totals, charts drawn,
// the result of an action with a wrong token and with the right one, CSP violations and
// console errors. Exit 0 when it got that far, 1 on a failure of its own (with a message).
import puppeteer from "puppeteer-core";

const [url, token, shot] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const T = 20000;

const out = { console_errors: [], csp_violations: [], failed_responses: [] };
const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    defaultViewport: { width: 1400, height: 1000 },
});
try {
    const page = await browser.newPage();
    // failed loads are reported by their responses (below), not as console text
    page.on("console", (m) => {
        if (m.type() === "error" && !/^Failed to load resource/.test(m.text()))
            out.console_errors.push(m.text());
    });
    page.on("response", (r) => {
        if (r.status() >= 400)
            out.failed_responses.push({ url: new URL(r.url()).pathname, status: r.status() });
    });
    page.on("pageerror", (e) => out.console_errors.push(String(e)));
    await page.evaluateOnNewDocument(() => {
        document.addEventListener("securitypolicyviolation", (e) => {
            (window.__csp = window.__csp || []).push(e.violatedDirective + " " + e.blockedURI);
        });
    });
    await page.goto(url + "/dashboard", { waitUntil: "load", timeout: T });
    await page.waitForSelector('#keys tr[data-key="k1"] [data-field="requests"][data-value]',
                               { timeout: T });
    await page.waitForSelector('svg.chart[data-chart="requests"] .series', { timeout: T });
    await page.waitForFunction(() => {
        const e = document.querySelector('#totals [data-field="requests"]');
        return e && e.getAttribute("data-value") && e.getAttribute("data-value") !== "0";
    }, { timeout: T });

    const read = () => page.evaluate(() => {
        const rows = {};
        for (const tr of document.querySelectorAll("#keys tr[data-key]")) {
            const r = {};
            for (const td of tr.querySelectorAll("[data-field]"))
                r[td.getAttribute("data-field")] = { text: td.textContent.trim(),
                                                     value: td.getAttribute("data-value") };
            rows[tr.getAttribute("data-key")] = r;
        }
        const totals = {};
        for (const e of document.querySelectorAll("#totals [data-field]"))
            totals[e.getAttribute("data-field")] = e.getAttribute("data-value");
        const charts = {};
        for (const s of document.querySelectorAll("svg.chart[data-chart]"))
            charts[s.getAttribute("data-chart")] = s.querySelectorAll(".series").length;
        return { rows, totals, charts,
                 events: document.querySelectorAll("#events tr[data-event]").length,
                 providers: [...document.querySelectorAll("#providers tr[data-provider]")]
                     .map((t) => t.getAttribute("data-provider")),
                 csp: window.__csp || [] };
    });
    Object.assign(out, await read());

    // an action with a wrong token: refused, and the key unchanged
    const act = async (tok) => {
        await page.evaluate(() => { document.querySelector("#action-result").textContent = ""; });
        await page.click('#keys tr[data-key="k1"] button[data-action="disable"]');
        await page.waitForSelector("#token-dialog[open]", { timeout: T });
        await page.type("#token-input", tok);
        await page.click("#token-ok");
        await page.waitForFunction(
            () => document.querySelector("#action-result").textContent.trim() !== "",
            { timeout: T });
        return page.evaluate(() => {
            const r = document.querySelector("#action-result");
            return { text: r.textContent.trim(), error: r.classList.contains("error") };
        });
    };
    out.wrong_token = await act("not-the-token");
    out.right_token = await act(token);
    await page.waitForFunction(
        () => /disabled/.test(document.querySelector(
            '#keys tr[data-key="k1"] [data-field="state"]').textContent),
        { timeout: T });
    out.after = (await read()).rows;
    out.csp_violations = (await page.evaluate(() => window.__csp || []));
    await page.screenshot({ path: shot, fullPage: true });
    out.screenshot = shot;
    console.log(JSON.stringify(out));
} catch (e) {
    console.error("dashboard_check: " + (e && e.stack ? e.stack : e));
    console.log(JSON.stringify(out));
    process.exitCode = 1;
} finally {
    await browser.close();
}
