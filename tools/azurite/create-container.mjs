// Creates a blob container, as scripts/test.sh does in Azurite before the
// azblob:// tests: node create-container.mjs SERVICE_URL CONTAINER, with
// the account and its key in AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY
// (the Shared Key scheme: an HMAC-SHA256 of the request with the key).
// An existing container is fine.
import { createHmac } from "node:crypto";
import { request } from "node:http";

const [service, name] = process.argv.slice(2);
const account = process.env.AZURE_STORAGE_ACCOUNT;
const key = process.env.AZURE_STORAGE_KEY;
const url = new URL(`${service.replace(/\/$/, "")}/${name}?restype=container`);
const date = new Date().toUTCString();
const version = "2021-08-06";
// VERB, eleven empty standard headers, the x-ms- headers, the resource.
const toSign = ["PUT", ...Array(11).fill(""),
  `x-ms-date:${date}`, `x-ms-version:${version}`,
  `/${account}${url.pathname}\nrestype:container`].join("\n");
const sig = createHmac("sha256", Buffer.from(key, "base64")).update(toSign, "utf8").digest("base64");
const req = request(url, {
  method: "PUT",
  headers: { "x-ms-date": date, "x-ms-version": version, "Content-Length": 0,
    Authorization: `SharedKey ${account}:${sig}` },
}, (res) => {
  let body = "";
  res.on("data", (c) => { body += c; });
  res.on("end", () => {
    if (res.statusCode === 201 || res.statusCode === 409) return;
    console.error(`create-container: ${url}: ${res.statusCode} ${body}`);
    process.exitCode = 1;
  });
});
req.on("error", (e) => { console.error(`create-container: ${url}: ${e.message}`); process.exitCode = 1; });
req.end();
