import type { Demo, DemoRecord, InvalidKind, ReceivedRecord } from './demo';
import { chartRecords, drawLatencyChart, formatMs, median, SERIES } from './latency-chart';

/** Rows kept in the received list (the newest; `received()` has them all). */
const RECEIVED_ROWS = 100;

const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} missing from index.html`);
  return element as T;
};

/** `0x1234…abcd`, with the full value as the title. */
function hexCell(cell: HTMLTableCellElement, value: string | null | undefined): void {
  const text = value ? `${value.slice(0, 6)}…${value.slice(-4)}` : '—';
  if (cell.textContent !== text) {
    cell.textContent = text;
    cell.title = value ?? '';
  }
}

const STATE_LABELS: Record<DemoRecord['state'], string> = {
  sent: 'sent',
  acked: 'acked',
  nacked: 'nacked',
  receipt: 'receipt',
  verified: 'verified',
  failed: 'failed',
  reorged: 'reorged',
};

/** The anchoring cell: acked → included (n conf.) → final; reorged until re-included. */
function anchoringText(record: DemoRecord): { text: string; cls: string; title: string } {
  const title = record.history
    .map(
      (step) =>
        `r${step.revision} ${step.status} · block ${step.blockNumber} ${step.blockHash.slice(0, 10)}…`,
    )
    .join('\n');
  const reorgs = record.history.filter((step) => step.status === 'reorged').length;
  const again = reorgs === 0 ? '' : ` · reorged ${reorgs === 1 ? 'once' : `${reorgs}×`}`;
  const conf = `${record.confirmations} conf.`;
  switch (record.anchoring) {
    case 'included':
      return { text: `included (${conf})${again}`, cls: 'included', title };
    case 'final':
      return { text: `final (${conf})${again}`, cls: 'final', title };
    case 'reorged':
      return {
        text: `reorged: block ${record.receipt?.blockNumber} dropped, awaiting re-inclusion`,
        cls: 'reorged',
        title,
      };
    default:
      return record.recordId
        ? { text: 'acked', cls: 'acked', title: 'acked; waiting for the batch to be anchored' }
        : { text: '—', cls: 'none', title: '' };
  }
}

/** Binds the page's DOM to the demo model; redraws at most once per animation frame. */
export function mountView(demo: Demo): void {
  const stateEl = $<HTMLSpanElement>('state');
  const errorEl = $<HTMLParagraphElement>('error');
  const infoEl = $<HTMLDListElement>('session-info');
  const tokenInput = $<HTMLInputElement>('token');
  const connectButton = $<HTMLButtonElement>('connect');
  const disconnectButton = $<HTMLButtonElement>('disconnect');
  const countInput = $<HTMLInputElement>('count');
  const topicInput = $<HTMLInputElement>('topic');
  const publishButton = $<HTMLButtonElement>('publish');
  const invalidButtons = [...document.querySelectorAll<HTMLButtonElement>('button[data-invalid]')];
  const nacksEl = $<HTMLOListElement>('nacks');
  const nacksEmpty = $<HTMLParagraphElement>('nacks-empty');
  const tbody = $<HTMLTableSectionElement>('records');
  const counters = {
    sent: $('count-sent'),
    acked: $('count-acked'),
    nacked: $('count-nacked'),
    receipts: $('count-receipts'),
    verified: $('count-verified'),
    failed: $('count-failed'),
  };
  const anchoringCounters = {
    included: $('count-included'),
    final: $('count-final'),
    reorged: $('count-reorged'),
  };
  const subStateEl = $<HTMLSpanElement>('sub-state');
  const subErrorEl = $<HTMLParagraphElement>('sub-error');
  const subInfoEl = $<HTMLDListElement>('sub-info');
  const subTopicInput = $<HTMLInputElement>('sub-topic');
  const subAfterInput = $<HTMLInputElement>('sub-after');
  const subscribeButton = $<HTMLButtonElement>('subscribe');
  const unsubscribeButton = $<HTMLButtonElement>('unsubscribe');
  const subConnectButton = $<HTMLButtonElement>('sub-connect');
  const subDisconnectButton = $<HTMLButtonElement>('sub-disconnect');
  const receivedEl = $<HTMLOListElement>('received');
  const receivedEmpty = $<HTMLParagraphElement>('received-empty');
  const chart = $<HTMLCanvasElement>('latency-chart');
  const legendEl = $<HTMLUListElement>('latency-legend');
  const rows = new Map<DemoRecord, HTMLTableRowElement>();
  let renderedNacks = 0;
  let renderedReceived = 0;
  let subActionError: string | null = null;

  $('connect-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void demo.connect(tokenInput.value.trim());
  });
  disconnectButton.addEventListener('click', () => void demo.close());
  const updatePublishLabel = () => {
    const n = Number.parseInt(countInput.value, 10);
    publishButton.textContent = `Publish ${Number.isFinite(n) && n > 0 ? n : '…'} record${n === 1 ? '' : 's'}`;
  };
  countInput.addEventListener('input', updatePublishLabel);
  $('publish-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const n = Number.parseInt(countInput.value, 10);
    if (!Number.isFinite(n) || n < 1) return;
    void demo
      .publish(n, topicInput.value.trim() || 'demo')
      .catch((error: unknown) => showError(error));
  });
  for (const button of invalidButtons) {
    button.addEventListener('click', () => {
      void demo
        .sendInvalid(button.dataset.invalid as InvalidKind)
        .catch((error: unknown) => showError(error));
    });
  }

  const subTopic = () => subTopicInput.value.trim() || 'demo';
  const subFailed = (error: unknown) => {
    subActionError = error instanceof Error ? error.message : String(error);
    render();
  };
  subConnectButton.addEventListener('click', () => {
    subActionError = null;
    void demo.startSubscriber(tokenInput.value.trim(), subTopic()).catch(subFailed);
  });
  subDisconnectButton.addEventListener('click', () => void demo.subscriber.close());
  $('subscribe-form').addEventListener('submit', (event) => {
    event.preventDefault();
    subActionError = null;
    const after = Number.parseInt(subAfterInput.value, 10);
    void demo
      .subscribeTo(subTopic(), Number.isFinite(after) && after >= 0 ? after : undefined)
      .then((result) => {
        if (!result.subscribed) subFailed(new Error(`${result.code}: ${result.message}`));
      }, subFailed);
  });
  unsubscribeButton.addEventListener('click', () => {
    subActionError = null;
    void demo.subscriber.unsubscribe().catch(subFailed);
  });
  window.addEventListener('resize', () => drawLatencyChart(chart, chartRecords(demo.records)));

  function showError(error: unknown): void {
    errorEl.textContent = error instanceof Error ? error.message : String(error);
    errorEl.hidden = false;
  }

  function renderFacts(): void {
    const facts: [string, string][] = [];
    const hello = demo.hello;
    if (hello && demo.state === 'open') {
      facts.push(
        ['Session', hello.sessionId],
        ['Subject', hello.subject],
        ['Topics', hello.topics.join(', ')],
      );
    }
    if (demo.info) {
      facts.push(
        ['Chain', String(demo.info.chainId)],
        ['Contract', demo.info.contract],
        ['RPC', demo.info.rpcUrl],
      );
    }
    const wide = new Set(['Contract', 'RPC']);
    const html = facts
      .map(
        ([k, v]) =>
          `<div${wide.has(k) ? ' class="wide"' : ''}><dt>${k}</dt><dd>${escapeHtml(v)}</dd></div>`,
      )
      .join('');
    if (infoEl.innerHTML !== html) infoEl.innerHTML = html;
  }

  function renderSubscriber(): void {
    const side = demo.subscriber;
    subStateEl.textContent = side.state;
    subStateEl.dataset.state = side.state;
    subStateEl.className = `pill pill-${side.state}`;
    const error = subActionError ?? side.error;
    subErrorEl.hidden = error === null;
    if (error !== null) subErrorEl.textContent = error;
    const open = side.state === 'open';
    const subscription = side.subscription;
    subscribeButton.disabled = !open;
    unsubscribeButton.disabled = !open || !subscription || subscription.ended !== null;
    subConnectButton.disabled = side.state === 'connecting';
    subDisconnectButton.disabled = !open;

    const facts: [string, string][] = [];
    const hello = side.hello;
    if (hello && open) {
      facts.push(
        ['Session', hello.sessionId],
        ['Subscribe grants', (hello.subscribe ?? []).join(', ') || 'none'],
      );
    }
    if (subscription) {
      const ended = subscription.ended ? ` · ended: ${subscription.ended.reason}` : '';
      facts.push(
        [
          'Subscription',
          `${subscription.topic} after ${subscription.startedAfter} (head ${subscription.head})${ended}`,
        ],
        ['Position', `${subscription.position} · ${side.received.length} received`],
      );
    }
    const html = facts
      .map(([k, v]) => `<div><dt>${k}</dt><dd>${escapeHtml(v)}</dd></div>`)
      .join('');
    if (subInfoEl.innerHTML !== html) subInfoEl.innerHTML = html;

    const received = side.received;
    for (const record of received.slice(
      Math.max(renderedReceived, received.length - RECEIVED_ROWS),
    )) {
      receivedEl.prepend(receivedRow(record));
    }
    while (receivedEl.childElementCount > RECEIVED_ROWS) receivedEl.lastElementChild?.remove();
    renderedReceived = received.length;
    receivedEmpty.hidden = renderedReceived > 0;
  }

  function receivedRow(record: ReceivedRecord): HTMLLIElement {
    const item = document.createElement('li');
    const seq = demo.seqOf(record.recordId);
    const from = seq === null ? record.subject : `this page #${seq}`;
    const delivered = seq === null ? null : demo.records[seq - 1]?.latency.delivered;
    item.title = `record ${record.recordId}\ncontent hash ${record.contentHash}\nfrom ${record.subject}`;
    item.innerHTML = `<span class="position">#${record.position}</span><span>${escapeHtml(from)}</span><span class="payload">${escapeHtml(JSON.stringify(record.payload).slice(0, 120))}</span><span class="late">${delivered == null ? '' : `+${formatMs(delivered)}`}</span>`;
    return item;
  }

  function renderChart(): void {
    const shown = chartRecords(demo.records);
    drawLatencyChart(chart, shown);
    const html = SERIES.map((series) => {
      const value = median(shown, series.key);
      const text = value === null ? '—' : `median ${formatMs(value)}`;
      return `<li><span class="swatch" style="background:${series.color}"></span>${series.label} <span class="median">${text}</span></li>`;
    }).join('');
    if (legendEl.innerHTML !== html) legendEl.innerHTML = html;
  }

  function renderRow(record: DemoRecord): void {
    let row = rows.get(record);
    if (!row) {
      row = document.createElement('tr');
      for (let i = 0; i < 10; i++) row.appendChild(document.createElement('td'));
      row.cells[0]!.textContent = String(record.seq);
      row.cells[1]!.textContent = record.topic;
      rows.set(record, row);
      tbody.appendChild(row);
    }
    row.dataset.state = record.state;
    row.dataset.anchoring = record.anchoring ?? 'none';
    const cells = row.cells;
    const stateCell = cells[2]!;
    const stateText = record.nack ? `nacked: ${record.nack.code}` : STATE_LABELS[record.state];
    if (stateCell.textContent !== stateText) {
      stateCell.innerHTML = `<span class="tag tag-${record.state}">${escapeHtml(stateText)}</span>`;
      stateCell.title = record.nack?.message ?? record.error ?? '';
    }
    const anchoring = anchoringText(record);
    const anchoringCell = cells[3]!;
    if (anchoringCell.textContent !== anchoring.text) {
      anchoringCell.innerHTML = `<span class="tag tag-anchoring-${anchoring.cls}">${escapeHtml(anchoring.text)}</span>`;
    }
    anchoringCell.title = anchoring.title;
    hexCell(cells[4]!, record.recordId);
    hexCell(cells[5]!, record.contentHash);
    hexCell(cells[6]!, record.receipt?.batchId);
    const block = record.receipt ? String(record.receipt.blockNumber) : '—';
    if (cells[7]!.textContent !== block) cells[7]!.textContent = block;
    hexCell(cells[8]!, record.receipt?.txHash);
    const verifyCell = cells[9]!;
    let verdict = '—';
    let title = '';
    let cls = '';
    const verification = record.verification;
    if (record.state === 'receipt') verdict = 'checking…';
    else if (verification) {
      const { onChain } = verification;
      if (verification.valid) {
        verdict = `✓ canonical · root on chain (${onChain.recordCount} records)`;
        title = `proof valid · leaf matches · BatchAnchored root, count, block and tx match · block ${record.receipt?.blockNumber} is canonical (${onChain.confirmations} confirmations at head ${onChain.headBlockNumber})`;
        cls = 'ok';
      } else if (record.state === 'reorged') {
        verdict = onChain.canonical
          ? '✗ reorged notice (not valid)'
          : `✗ not canonical: block ${record.receipt?.blockNumber} left the chain`;
        title = verification.problems.join('\n');
        cls = 'warn';
      } else {
        const first = verification.problems[0] ?? 'invalid';
        verdict = onChain.canonical ? `✗ ${first}` : `✗ not canonical · ${first}`;
        title = verification.problems.join('\n');
        cls = 'bad';
      }
    } else if (record.state === 'failed') {
      verdict = `✗ ${record.error ?? 'failed'}`;
      title = record.error ?? '';
      cls = 'bad';
    } else if (record.state === 'reorged') verdict = 'checking…';
    if (verifyCell.textContent !== verdict) {
      verifyCell.textContent = verdict;
      verifyCell.className = cls;
    }
    verifyCell.title = title;
  }

  function render(): void {
    stateEl.textContent = demo.state;
    stateEl.dataset.state = demo.state;
    stateEl.className = `pill pill-${demo.state}`;
    if (demo.state === 'error' && demo.error) showError(new Error(demo.error));
    else if (demo.state === 'open') errorEl.hidden = true;
    const open = demo.state === 'open';
    publishButton.disabled = !open;
    for (const button of invalidButtons) button.disabled = !open;
    connectButton.disabled = demo.state === 'connecting';
    disconnectButton.disabled = !open;
    for (const [key, element] of Object.entries(counters)) {
      const value = String(demo.counts[key as keyof typeof counters]);
      if (element.textContent !== value) element.textContent = value;
    }
    for (const [key, element] of Object.entries(anchoringCounters)) {
      const value = String(demo.anchoring[key as keyof typeof anchoringCounters]);
      if (element.textContent !== value) element.textContent = value;
    }
    renderFacts();
    for (const entry of demo.nackLog.slice(renderedNacks)) {
      const item = document.createElement('li');
      item.innerHTML = `<code>${escapeHtml(entry.code)}</code> <span class="muted">${escapeHtml(entry.source)}</span> — ${escapeHtml(entry.message)}`;
      nacksEl.prepend(item);
    }
    renderedNacks = demo.nackLog.length;
    nacksEmpty.hidden = renderedNacks > 0;
    for (const record of demo.dirty) renderRow(record);
    demo.dirty.clear();
    renderSubscriber();
    renderChart();
  }

  let scheduled = false;
  demo.subscribe(() => {
    if (scheduled) return;
    scheduled = true;
    // setTimeout rather than requestAnimationFrame: keeps rendering in background tabs too.
    setTimeout(() => {
      scheduled = false;
      render();
    }, 30);
  });
  updatePublishLabel();
  render();
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
