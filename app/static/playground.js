// The playground page: one chat completion or response at a time against this gateway, read by
// hand (fetch and the SSE stream), with the images and documents, timings, errors and
// equivalent code on show.
import { readEvents } from "./events.js";
import { factsByDocument, factsByImage, showFacts } from "./inspect.js";
import { CHAT, PATHS, RESPONSES, chatEvent, readResponse, responsesBody, responsesEvent } from "./responses.js";
import { curlSnippet, pythonSnippet } from "./snippets.js";

const $ = (id) => document.getElementById(id);
const OTHER_MODEL = "__other__";
const INSPECT_MODEL = "inspect";
const V1 = new URL("v1", document.baseURI).href;

const page = {
  key: "", // the gateway key: in this variable and the key field only, never stored
  hints: [], // from playground/models: [{id, max_images, jobs}]
  // What goes with the prompt: images {name, url, mime, file: bool}, and documents, which
  // also have `pages`: [{thumbnail, width, height, text_characters}] as the gateway read them.
  images: [],
  controller: null,
  waitTimer: null, // while waiting: the timer that redraws the status, and its redraw
  waitTick: null,
  keepalives: 0,
};

// The gateway key, the model list and what each model takes

function authHeaders(extra) {
  const headers = Object.assign({}, extra);
  if (page.key) headers.Authorization = "Bearer " + page.key;
  return headers;
}

function askForKey(note) {
  $("key-panel").hidden = false;
  $("key-note").textContent = note;
  $("key").focus();
}

async function loadModels() {
  let response;
  try {
    response = await fetch(new URL("models", V1 + "/"), { headers: authHeaders() });
  } catch (error) {
    $("model-note").textContent = "Could not reach the gateway: " + error.message;
    return;
  }
  if (response.status === 401) {
    $("model").replaceChildren(new Option("enter the gateway key first", ""));
    askForKey(page.key
      ? "That key was refused. Try another one: it stays in this page only."
      : "Enter it to list the models and send requests. It stays in this page only: nothing is stored, and reloading the page forgets it.");
    return;
  }
  if (!response.ok) {
    $("model-note").textContent = "Could not list the models (HTTP " + response.status + ").";
    return;
  }
  fillModels((await response.json()).data.map((model) => model.id));
  if (page.key) $("key-note").textContent = "Key accepted. It stays in this page only.";
  const hints = await fetch("playground/models", { headers: authHeaders() }).catch(() => null);
  page.hints = hints && hints.ok ? (await hints.json()).data : [];
  modelChanged();
}

function fillModels(ids) {
  const select = $("model");
  const previous = select.value;
  select.textContent = "";
  for (const id of ids) select.append(new Option(id, id));
  select.append(new Option("Other model id…", OTHER_MODEL));
  if (ids.includes(previous) || previous === OTHER_MODEL) select.value = previous;
  const inspect = ids.includes(INSPECT_MODEL);
  $("inspect").disabled = !inspect;
  if (!inspect) $("inspect").checked = false;
  $("inspect-note").textContent = inspect
    ? "Inspect also sends the images to the inspect model and shows, next to each one, what the gateway made of it."
    : "Inspect needs the inspect model, which this gateway does not serve.";
  modelChanged();
}

function currentModel() {
  const value = $("model").value;
  return value === OTHER_MODEL ? $("custom-model").value.trim() : value;
}

function hintFor(model) {
  return page.hints.find((hint) => hint.id === model)
    || page.hints.find((hint) => hint.id.endsWith("/*") && model.startsWith(hint.id.slice(0, -1)));
}

function modelChanged() {
  const other = $("model").value === OTHER_MODEL;
  $("custom-model-field").hidden = !other;
  const hint = hintFor(currentModel());
  const notes = [];
  if (hint) {
    notes.push(hint.max_images === 1 ? "Takes one image." : `Takes up to ${hint.max_images} images.`);
    if (hint.jobs) notes.push("Answers come from a job the gateway polls.");
  }
  $("model-note").textContent = notes.join(" ");
  $("files").multiple = !hint || hint.max_images !== 1;
  checkImageCount();
}

// Images: files, drops, pastes and URLs, shown as cards that the inspect results fill in

function maxImages() {
  const hint = hintFor(currentModel());
  return hint ? hint.max_images : Infinity;
}

function addImage(image) {
  if (maxImages() === 1) page.images.length = 0;
  page.images.push(image);
}

function isDocument(item) {
  return Array.isArray(item.pages);
}

function imagesSent() {
  // A document's pages go to the model as images.
  return page.images.reduce((count, item) => count + (isDocument(item) ? item.pages.length : 1), 0);
}

function isPdf(file) {
  return file.type === "application/pdf" || /\.pdf$/i.test(file.name);
}

async function addDocument(file) {
  // Read as a request would read it: the gateway renders its pages (and keeps them for the
  // request), and the page shows their thumbnails. What went wrong, if anything.
  const url = await readAsDataURL(file);
  const response = await fetch("playground/pages", {
    method: "POST",
    headers: authHeaders({ "Content-Type": "application/json" }),
    body: JSON.stringify({ filename: file.name, file_data: url }),
  });
  if (!response.ok) return `${file.name}: ${(await errorOf(response)).message}`;
  const read = await response.json();
  page.images.push({ name: file.name, url, mime: "application/pdf", file: true, pages: read.pages });
  return null;
}

function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function addFiles(files) {
  const skipped = [];
  const documents = [];
  for (const file of files) {
    if (isPdf(file)) {
      documents.push(file);
      continue;
    }
    if (!file.type.startsWith("image/")) {
      skipped.push(file.name);
      continue;
    }
    const name = file.name || `pasted-${page.images.length + 1}.${file.type.split("/")[1]}`;
    addImage({ name, url: await readAsDataURL(file), mime: file.type, file: true });
  }
  const unread = [];
  for (const file of documents) {
    const problem = await addDocument(file);
    if (problem) unread.push(problem);
  }
  imagesChanged();
  const notes = [...unread];
  if (skipped.length) notes.push(`Not an image or a PDF, left out: ${skipped.join(", ")}.`);
  if (notes.length) $("image-note").textContent = notes.join(" ");
}

function addUrl() {
  const url = $("image-url").value.trim();
  if (!/^(https?:|data:)/i.test(url)) {
    $("image-note").textContent = "An image URL starts with https://, http:// or data:.";
    $("image-url").focus();
    return;
  }
  addImage({ name: url.startsWith("data:") ? "data URI" : url, url, mime: "", file: false });
  imagesChanged();
  $("image-url").value = "";
}

function imagesChanged() {
  const list = $("images");
  list.textContent = "";
  page.images.forEach((image, index) => {
    const card = document.createElement("li");
    card.className = "image-card";
    const thumb = isDocument(image) ? pageStrip(image, index) : document.createElement("img");
    if (!isDocument(image)) {
      thumb.src = image.url;
      thumb.alt = `Image ${index + 1}: ${image.name}`;
    }
    const name = document.createElement("p");
    name.className = "name";
    name.textContent = isDocument(image)
      ? `${index + 1}. ${image.name} (${image.pages.length} page${image.pages.length === 1 ? "" : "s"})`
      : `${index + 1}. ${image.name}`;
    const result = document.createElement("div");
    result.className = "inspect-result";
    result.id = `inspect-${index + 1}`;
    result.setAttribute("aria-live", "polite");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove image ${index + 1}`);
    remove.addEventListener("click", () => {
      page.images.splice(index, 1);
      imagesChanged();
      $("files").focus();
    });
    card.append(thumb, name, remove, result);
    list.append(card);
  });
  checkImageCount();
}

function pageStrip(item, index) {
  // A document's pages, as small pictures side by side.
  const strip = document.createElement("div");
  strip.className = "pages";
  strip.setAttribute("role", "group");
  strip.setAttribute("aria-label", `Document ${index + 1}: ${item.name}`);
  item.pages.forEach((page, number) => {
    const thumb = document.createElement("img");
    thumb.src = page.thumbnail;
    thumb.alt = `${item.name}, page ${number + 1}`;
    strip.append(thumb);
  });
  return strip;
}

function checkImageCount() {
  const limit = maxImages();
  const sent = imagesSent();
  $("image-note").textContent = sent > limit
    ? `This model takes at most ${limit} image${limit === 1 ? "" : "s"} (a document's pages count): the gateway will refuse ${sent}.`
    : "";
}

// The request, and the same request as code

function buildBody(urlOf) {
  const detail = $("detail").value;
  const content = [{ type: "text", text: $("prompt").value }];
  for (const image of page.images) {
    content.push(isDocument(image)
      ? { type: "file", file: { filename: image.name, file_data: urlOf(image) } }
      : { type: "image_url", image_url: { url: urlOf(image), detail } });
  }
  const body = { model: currentModel(), messages: [{ role: "user", content }] };
  const maxTokens = Number.parseInt($("max-tokens").value, 10);
  if (maxTokens > 0) body.max_tokens = maxTokens;
  if ($("stream").checked) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  return body;
}

function currentApi() {
  return $("api").value === RESPONSES ? RESPONSES : CHAT;
}

function buildRequest(urlOf) {
  // The body for the API picked: the chat body, or the same request in the Responses form.
  const body = buildBody(urlOf);
  return currentApi() === RESPONSES ? responsesBody(body) : body;
}

function showSnippets() {
  const needsKey = Boolean(page.key);
  const api = currentApi();
  $("curl-snippet").textContent = curlSnippet(V1, buildRequest, needsKey, api);
  $("python-snippet").textContent = pythonSnippet(V1, buildRequest, needsKey, api);
}

async function copySnippet(button) {
  const pre = $(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(pre.textContent);
    $("copy-status").textContent = "Copied.";
  } catch {
    // Without clipboard access (plain http), select the text for the user to copy.
    getSelection().selectAllChildren(pre);
    pre.focus();
    $("copy-status").textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

// Showing progress, errors and timings

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function startWaiting(label, since) {
  stopWaiting();
  const tick = () => {
    const seconds = ((performance.now() - since) / 1000).toFixed(1);
    const kept = page.keepalives ? ` · ${page.keepalives} keepalive${page.keepalives === 1 ? "" : "s"}` : "";
    setStatus("waiting", `${label} ${seconds} s${kept}`);
  };
  tick();
  page.waitTimer = setInterval(tick, 200);
  page.waitTick = tick;
}

function stopWaiting() {
  clearInterval(page.waitTimer);
  page.waitTimer = null;
  page.waitTick = null;
}

function showError(error, where) {
  stopWaiting();
  $("error").hidden = false;
  $("error-status").textContent = where;
  $("error-type").textContent = error.type || "–";
  $("error-code").textContent = error.code ?? "–";
  $("error-param").textContent = error.param ?? "–";
  $("error-message").textContent = error.message || "";
  setStatus("error", `Failed: ${error.code || error.type || where}`);
}

function ms(value) {
  return `${Math.round(value)} ms`;
}

function showDone(note) {
  stopWaiting();
  setStatus("done", note ? `Done (${note}).` : "Done.");
}

function showUsage(usage) {
  if (usage) {
    $("usage").textContent = `${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion = ${usage.total_tokens}`;
  }
}

function resetAnswer() {
  stopWaiting();
  $("answer").textContent = "";
  $("error").hidden = true;
  for (const id of ["ttft", "total", "overhead", "usage", "request-id"]) $(id).textContent = "–";
  page.keepalives = 0;
}

// Reading the answer

async function readStream(response, started, jobs, parse) {
  // `parse` reads one event's data in the API's own format (chatEvent, responsesEvent).
  let firstToken = null;
  let failed = false;
  let note = "";
  const waitLabel = jobs ? "Waiting for the job…" : "Waiting for the first token…";
  const finished = await readEvents(response.body, (data) => {
    const event = parse(data);
    showUsage(event.usage);
    if (event.error) {
      failed = true;
      showError(event.error, "in the stream");
      return false;
    }
    if (event.done) {
      note = event.note || "";
      return false;
    }
    const text = event.text || "";
    if (text && firstToken === null) {
      firstToken = performance.now();
      $("ttft").textContent = ms(firstToken - started);
      stopWaiting();
      setStatus("streaming", "Streaming…");
    } else if (!text && firstToken === null && !page.waitTimer) {
      startWaiting(waitLabel, started);
    }
    $("answer").textContent += text;
    return true;
  }, (comment) => {
    if (comment === "keepalive") page.keepalives += 1;
    if (firstToken === null && !page.waitTimer) startWaiting(waitLabel, started);
    else if (page.waitTick) page.waitTick();
  });
  if (!failed && !finished) {
    showError({ message: "The stream ended before its last event: the connection broke off." }, "stream cut short");
  }
  if (!failed && finished) showDone(note);
}

async function readCompletion(response, api) {
  const answer = await response.json();
  $("ttft").textContent = "– (not streamed)";
  if (api === RESPONSES) {
    const { text, usage, note } = readResponse(answer);
    $("answer").textContent = text;
    showUsage(usage);
    showDone(note);
    return;
  }
  $("answer").textContent = answer.choices.map((choice) => choice.message.content ?? "").join("\n———\n");
  showUsage(answer.usage);
  showDone("");
}

async function errorOf(response) {
  // OpenAI's envelope from the gateway; anything else (a proxy's page) shown shortened.
  const text = await response.text();
  try {
    const error = JSON.parse(text).error;
    if (error) return error;
  } catch {
    // not JSON
  }
  return { message: text.slice(0, 500) || response.statusText };
}

async function send(event) {
  event.preventDefault();
  const model = currentModel();
  if (!model) {
    setStatus("error", "Pick a model, or type a model id.");
    ($("model").value === OTHER_MODEL ? $("custom-model") : $("model")).focus();
    return;
  }
  resetAnswer();
  showSnippets();
  const api = currentApi();
  const body = buildRequest((image) => image.url);
  const jobs = Boolean((hintFor(model) || {}).jobs);
  if ($("inspect").checked && page.images.length) inspectImages(buildBody((image) => image.url));
  page.controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  const started = performance.now();
  if (jobs && !body.stream) startWaiting("Waiting for the job…", started);
  else setStatus("sending", "Sending…");
  try {
    const response = await fetch(new URL(PATHS[api], V1 + "/"), {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
      signal: page.controller.signal,
    });
    $("request-id").textContent = response.headers.get("x-request-id") || "–";
    const overhead = response.headers.get("x-gateway-overhead-ms");
    $("overhead").textContent = overhead ? `${Number(overhead).toFixed(2)} ms`
      : body.stream ? "– (sent with non-streamed answers only)" : "–";
    if (!response.ok) {
      showError(await errorOf(response), `HTTP ${response.status}`);
      if (response.status === 401) askForKey("The gateway refused the request: it needs a valid key.");
    } else if (body.stream) {
      await readStream(response, started, jobs, api === RESPONSES ? responsesEvent : chatEvent);
    } else {
      await readCompletion(response, api);
    }
  } catch (error) {
    if (error.name === "AbortError") setStatus("idle", "Stopped.");
    else showError({ message: error.message }, "no answer");
  } finally {
    stopWaiting();
    $("total").textContent = ms(performance.now() - started);
    $("send").disabled = false;
    $("stop").disabled = true;
    page.controller = null;
  }
}

// Inspect: the same images, sent to the inspect model, described next to each thumbnail

async function inspectImages(body) {
  const targets = page.images.map((image, index) => $(`inspect-${index + 1}`));
  for (const target of targets) {
    target.dataset.state = "pending";
    target.textContent = "Inspecting…";
  }
  const request = { model: INSPECT_MODEL, messages: body.messages };
  let answer;
  try {
    const response = await fetch(new URL("chat/completions", V1 + "/"), {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(request),
    });
    if (!response.ok) throw await errorOf(response);
    answer = (await response.json()).choices[0].message.content;
  } catch (error) {
    for (const target of targets) {
      target.dataset.state = "error";
      target.textContent = `Inspect failed: ${error.code || error.type || "error"}: ${error.message}`;
    }
    return;
  }
  // The answer numbers documents and images apart, a document's pages among the images.
  const images = factsByImage(answer);
  const documents = factsByDocument(answer);
  let image = 0;
  let document = 0;
  page.images.forEach((item, index) => {
    if (isDocument(item)) {
      document += 1;
      image += item.pages.length;
      if (documents.has(document)) showFacts(targets[index], documents.get(document));
    } else {
      image += 1;
      if (images.has(image)) showFacts(targets[index], images.get(image));
    }
  });
}

// Wiring

function wire() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    page.key = $("key").value.trim();
    loadModels();
  });
  $("model").addEventListener("change", () => {
    modelChanged();
    if ($("model").value === OTHER_MODEL) $("custom-model").focus();
  });
  $("custom-model").addEventListener("input", modelChanged);
  $("files").addEventListener("change", async (event) => {
    await addFiles(event.target.files);
    event.target.value = "";
  });
  $("add-url").addEventListener("click", addUrl);
  $("image-url").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      addUrl();
    }
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const url = event.dataTransfer.getData("text/uri-list").split("\n")[0].trim();
    if (event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
    else if (url) {
      addImage({ name: url, url, mime: "", file: false });
      imagesChanged();
    }
  });
  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  $("request").addEventListener("submit", send);
  $("request").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("request").requestSubmit();
  });
  $("stop").addEventListener("click", () => page.controller?.abort());
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => copySnippet(button));
  }
  loadModels();
}

wire();
