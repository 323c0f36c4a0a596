// The board page: polls /api/board once a second and redraws when the snapshot's version changes.
// Plain DOM building (textContent only: pod names are user data), no libraries.
"use strict";

const POLL_MS = 1000;
const STATE_WORDS = {
  assigned: "assigned to", warm: "warm: free in ipamd's pool", cooldown: "cooling down",
  syncing: "on the ENI in EC2, not in ipamd's pool yet", unknown: "ipamd not answering",
};

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function lastOctet(ip) { return ip.slice(ip.lastIndexOf(".") + 1); }

function clock(unixSeconds) { return new Date(unixSeconds * 1000).toLocaleTimeString([], { hour12: false }); }

function slotTitle(slot, node) {
  let text = slot.ip + (slot.prefix ? " (prefix " + slot.prefix + ")" : "") + " — ";
  if (slot.state === "assigned") text += "assigned to " + (slot.pod || "a pod") +
    (slot.podGone ? ", which Kubernetes no longer has: ipamd releases it when the CNI DEL runs" : "");
  else if (slot.state === "cooldown") text += "released, cooling down until " + clock(slot.cooldownUntil) +
    " (IP_COOLDOWN_PERIOD " + node.cooldownSeconds + " s)";
  else text += STATE_WORDS[slot.state] || slot.state;
  return text;
}

function slotBox(slot, node) {
  const box = el("span", "slot " + slot.state + (slot.podGone ? " gone" : ""), lastOctet(slot.ip));
  box.title = slotTitle(slot, node);
  box.dataset.ip = slot.ip;
  box.dataset.state = slot.state;
  if (slot.pod) box.dataset.pod = slot.pod;
  return box;
}

function slotsRow(eni, node) {
  const row = el("div", "slots");
  const groups = new Map();
  for (const slot of eni.slots) {
    if (!slot.prefix) { row.append(slotBox(slot, node)); continue; }
    if (!groups.has(slot.prefix)) {
      const group = el("div", "prefix");
      group.append(el("div", "prefix-label", "prefix " + slot.prefix));
      groups.set(slot.prefix, group);
      row.append(group);
    }
    groups.get(slot.prefix).append(slotBox(slot, node));
  }
  if (!eni.slots.length) row.append(el("span", "eni-sub", "no secondary addresses yet"));
  return row;
}

function podLine(pod, withIp) {
  const line = el("li", "pod " + pod.status);
  line.dataset.pod = pod.namespace + "/" + pod.name;
  line.dataset.status = pod.status;
  line.title = pod.namespace + "/" + pod.name + " · " + (pod.ip || "no IP yet") + " · " + pod.status;
  line.append(el("span", "dot", "●"));
  if (withIp) line.append(el("span", "ip", pod.ip || "—"));
  const name = el("span", "pod-name");
  if (pod.namespace !== "default") name.append(el("span", "ns", pod.namespace + "/"));
  name.append(document.createTextNode(pod.name));
  line.append(name);
  if (pod.status !== "Running") line.append(el("span", "st", pod.status));
  return line;
}

function splitName(name) {
  const dot = name.indexOf(".");
  return dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
}

function tally(state, n, title) {
  const item = el("span", "tally");
  item.title = title;
  item.append(el("span", "slot " + state), el("b", "", n));
  return item;
}

function nodeHead(node) {
  const head = el("div", "node-head");
  const name = el("div", "node-name");
  const [host, domain] = splitName(node.name);
  name.append(el("span", node.ready ? "badge" : "badge bad", node.ready ? "Ready" : "NotReady"),
    el("span", "host-name", host), el("span", "domain", domain));
  name.title = node.name;
  head.append(name);
  const subnet = node.enis.length ? node.enis[0].subnet + " (" + node.enis[0].subnetCidr + ")" : "";
  const facts = el("div", "node-facts");
  facts.append(el("span", "ip", node.primaryIp), " · " +
    [node.instanceType, node.zone, node.instanceId].filter(Boolean).join(" · "));
  facts.title = [node.primaryIp, node.instanceType, node.zone, subnet, node.instanceId].filter(Boolean).join(" · ");
  head.append(facts);
  const counts = el("div", "node-counts");
  const pods = el("span", "count");
  pods.append("pods ", el("b", "", node.podCount + "/" + (node.maxPods ?? "?")));
  pods.title = "pods on this node (host network ones included) / max pods";
  const meter = el("div", "meter" + (node.maxPods && node.podCount >= node.maxPods ? " full" : ""));
  const bar = el("div");
  bar.style.width = Math.min(100, node.maxPods ? (100 * node.podCount) / node.maxPods : 0) + "%";
  meter.append(bar);
  const enis = el("span", "count");
  enis.append("ENIs ", el("b", "", node.eniCount + "/" + (node.maxEnis ?? "?")));
  enis.title = "ENIs attached / the instance type's maximum";
  const c = node.counts;
  counts.append(pods, meter, enis, tally("assigned", c.assigned, "addresses assigned to pods"),
    tally("warm", c.warm, "warm addresses"), tally("cooldown", c.cooldown, "addresses cooling down"));
  head.append(counts);
  if (!node.ipamd.ok) head.append(el("div", "ipamd-error", "ipamd: " + (node.ipamd.error || "not answering")));
  return head;
}

function eniBlock(eni, node) {
  const block = el("div", "eni");
  block.dataset.eni = eni.id;
  const head = el("div", "eni-head");
  const other = node.enis.length && eni.subnetId !== node.enis[0].subnetId;  // custom networking
  const notes = [other ? eni.subnet : "", eni.excluded ? "excluded from pods" : "",
    eni.inIpamd ? "" : "not in ipamd"].filter(Boolean).join(" · ");
  head.append(el("span", "eni-dev", "eth" + eni.device), el("span", "eni-id", eni.id),
    el("span", "ip", eni.primaryIp), el("span", "eni-sub", notes));
  head.title = eni.id + " · device " + eni.device + " · primary " + eni.primaryIp + " · " + eni.subnet +
    " (" + eni.subnetId + ", " + eni.subnetCidr + ")";
  block.append(head, slotsRow(eni, node));
  const pods = node.pods.filter((p) => p.eni === eni.id).sort((a, b) => ipOrder(a.ip) - ipOrder(b.ip));
  if (pods.length) {
    const list = el("ul", "pods");
    for (const pod of pods) list.append(podLine(pod, true));
    block.append(list);
  }
  return block;
}

function ipOrder(ip) { return (ip || "0.0.0.0").split(".").reduce((n, part) => n * 256 + Number(part), 0); }

function nodeBox(node) {
  const box = el("article", "node" + (node.ready ? "" : " notready"));
  box.dataset.node = node.name;
  box.append(nodeHead(node));
  for (const eni of node.enis) box.append(eniBlock(eni, node));
  const elsewhere = node.pods.filter((p) => !p.eni);
  if (elsewhere.length) {
    const block = el("div", "eni");
    block.append(el("div", "eni-head eni-sub", "no address yet"));
    const list = el("ul", "pods");
    for (const pod of elsewhere) list.append(podLine(pod, false));
    block.append(list);
    box.append(block);
  }
  const host = el("div", "host");
  host.append("host network: ");
  if (!node.hostPods.length) host.append("—");
  node.hostPods.forEach((pod, i) => {
    const name = el("span", "pod-name", pod.name);
    name.dataset.pod = pod.namespace + "/" + pod.name;
    name.title = pod.namespace + "/" + pod.name + " · " + pod.ip + " (the node's address) · " + pod.status;
    host.append(i ? ", " : "", name);
  });
  box.append(host);
  return box;
}

function pendingArea(pending) {
  const area = document.getElementById("pending");
  area.replaceChildren();
  if (!pending.length) return;
  const title = el("h2", "", "Pending ");
  title.append(el("span", "n", pending.length));
  area.append(title);
  const groups = new Map();   // one card per reason and cause, e.g. every pod the cooldown keeps waiting
  for (const pod of pending) {
    const key = pod.reason + "\u0000" + pod.cause;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(pod);
  }
  const list = el("div", "pending-list");
  for (const pods of groups.values()) {
    const first = pods[0];
    const card = el("div", "pending-pod");
    card.dataset.reason = first.reason;
    card.append(el("span", "reason", first.reason), " · " + pods.length + (pods.length === 1 ? " pod" : " pods"));
    if (first.cause) {
      const msg = el("div", "msg", first.cause);
      msg.title = first.message;
      card.append(msg);
    }
    const names = el("div", "names");
    names.title = pods.map((p) => p.namespace + "/" + p.name + (p.node ? " on " + p.node : "")).join("\n");
    pods.forEach((pod, i) => {
      const name = el("span", "pod-name", (pod.namespace === "default" ? "" : pod.namespace + "/") + pod.name);
      name.dataset.pod = pod.namespace + "/" + pod.name;
      names.append(i ? ", " : "", name);
      if (pod.node) names.append(el("span", "on", " on " + splitName(pod.node)[0]));
    });
    card.append(names);
    list.append(card);
  }
  area.append(list);
}

function render(snap) {
  document.getElementById("cluster").textContent = snap.cluster;
  document.title = "minieks board · " + snap.cluster;
  const totals = document.getElementById("totals");
  totals.replaceChildren(el("b", "", snap.totals.nodes), " nodes · ", el("b", "", snap.totals.pods), " pods · ",
    el("b", snap.totals.pending ? "warn" : "", snap.totals.pending), " pending");
  const nodes = document.getElementById("nodes");
  nodes.replaceChildren(...snap.nodes.map(nodeBox));
  if (!snap.nodes.length) nodes.append(el("div", "empty", "no nodes yet"));
  pendingArea(snap.pending);
  document.body.dataset.version = snap.version;
}

async function poll() {
  const live = document.getElementById("live");
  try {
    const response = await fetch("/api/board", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const snap = await response.json();
    if (snap.version !== document.body.dataset.version) render(snap);
    document.body.dataset.state = "live";
    live.textContent = "live · " + clock(snap.generatedAt);
  } catch (err) {
    document.body.dataset.state = "stale";
    live.textContent = "not updating: " + err.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
