// @ts-check
// The stream viewer's decoder, in a Worker: WebCodecs' VideoDecoder (optimizeForLatency) for
// the H.264 access units of /ws/stream, drawing each decoded picture on the OffscreenCanvas the
// page transferred. The page (stream.js) owns the WebSocket and forwards what it receives.
//
// Page → worker: {type:"canvas", canvas} (once, transferred); {type:"init", codec, width,
// height}; {type:"frame", number, keyframe, data: ArrayBuffer (the access unit, transferred)}.
// Worker → page: {type:"configured", codec, hardware} | {type:"unsupported", codec, reason};
// {type:"decoded", number, decodeMs}; {type:"keyframe"} (a keyframe is needed: sent once per
// gap); {type:"error", message}.
//
// Types (JSDoc, checked by TypeScript: tests/e2e/tsconfig.stream-worker.json, `npm run typecheck`;
// stream.js declares the same ones).
/**
 * @typedef {{type: "canvas", canvas: OffscreenCanvas}} CanvasMessage
 * @typedef {{type: "init", codec: string, width: number, height: number}} DecoderInit
 * @typedef {{type: "frame", number: number, keyframe: boolean, data: ArrayBuffer}} FrameMessage
 * @typedef {CanvasMessage | DecoderInit | FrameMessage} ToWorker
 * @typedef {{type: "configured", codec: string, hardware?: boolean}
 *   | {type: "unsupported", codec: string, reason: string}
 *   | {type: "decoded", number: number, decodeMs: number | null}
 *   | {type: "keyframe"}
 *   | {type: "error", message: string}} FromWorker
 */

/** @type {OffscreenCanvas | null} */
let canvas = null;
/** @type {OffscreenCanvasRenderingContext2D | null} */
let ctx = null;
/** @type {VideoDecoder | null} */
let decoder = null;
/** The last init message, to rebuild the decoder after an error.
 * @type {VideoDecoderConfig | null} */
let config = null;
/** Pictures are skipped until a keyframe arrives (start, errors). */
let needKey = true;
let askedForKey = false;
/** When each picture went into the decoder, by its number (the chunk's timestamp). */
const started = /** @type {Map<number, number>} */ (new Map());

/** @param {FromWorker} msg */
function post(msg) {
  self.postMessage(msg);
}

function wantKeyframe() {
  needKey = true;
  if (!askedForKey) {
    askedForKey = true;
    post({ type: "keyframe" });
  }
}

function newDecoder() {
  if (decoder && decoder.state !== "closed") decoder.close();
  started.clear();
  decoder = new VideoDecoder({
    output(frame) {
      const number = frame.timestamp;
      const t0 = started.get(number);
      started.delete(number);
      if (ctx) ctx.drawImage(frame, 0, 0);
      frame.close();
      post({ type: "decoded", number, decodeMs: t0 === undefined ? null : performance.now() - t0 });
    },
    error(e) {
      post({ type: "error", message: e.message });
      // Start over at the next keyframe with a fresh decoder.
      decoder = null;
      wantKeyframe();
    },
  });
}

/** @param {DecoderInit} init */
async function configure(init) {
  /** @type {VideoDecoderConfig} */
  const wanted = { codec: init.codec, optimizeForLatency: true };
  /** @type {VideoDecoderSupport & {reason?: string}} */
  let support;
  try {
    support = await VideoDecoder.isConfigSupported(wanted);
  } catch (e) {
    support = { supported: false, reason: /** @type {Error} */ (e).message };
  }
  if (!support.supported) {
    post({ type: "unsupported", codec: init.codec, reason: support.reason || "VideoDecoder does not support it" });
    return;
  }
  config = wanted;
  if (canvas) {
    canvas.width = init.width;
    canvas.height = init.height;
  }
  newDecoder();
  /** @type {VideoDecoder} */ (decoder).configure(config);
  needKey = true;
  post({ type: "configured", codec: init.codec });
}

/** Decoding runs in order; configuring is async, so messages wait for it. */
let queue = Promise.resolve();

/** @param {FrameMessage} msg */
function onFrame(msg) {
  if (!config) return;
  if (!decoder || decoder.state === "closed") {
    newDecoder();
    /** @type {VideoDecoder} */ (decoder).configure(config);
  }
  if (needKey && !msg.keyframe) {
    wantKeyframe();
    return;
  }
  needKey = false;
  askedForKey = false;
  started.set(msg.number, performance.now());
  try {
    /** @type {VideoDecoder} */ (decoder).decode(new EncodedVideoChunk({ type: msg.keyframe ? "key" : "delta", timestamp: msg.number, data: msg.data }));
  } catch (e) {
    post({ type: "error", message: /** @type {Error} */ (e).message });
    decoder = null;
    wantKeyframe();
  }
}

self.onmessage = (e) => {
  /** @type {ToWorker} */
  const msg = e.data;
  queue = queue.then(async () => {
    switch (msg.type) {
      case "canvas":
        canvas = msg.canvas;
        ctx = canvas.getContext("2d", { alpha: false });
        break;
      case "init":
        await configure(msg);
        break;
      case "frame":
        onFrame(msg);
        break;
      default:
        break;
    }
  });
};
