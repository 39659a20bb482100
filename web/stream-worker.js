// The stream viewer's decoder, in a Worker: WebCodecs' VideoDecoder (optimizeForLatency) for
// the H.264 access units of /ws/stream, drawing each decoded picture on the OffscreenCanvas the
// page transferred. The page (stream.js) owns the WebSocket and forwards what it receives.
//
// Page → worker: {type:"canvas", canvas} (once, transferred); {type:"init", codec, width,
// height}; {type:"frame", number, keyframe, data: ArrayBuffer (the access unit, transferred)}.
// Worker → page: {type:"configured", codec, hardware} | {type:"unsupported", codec, reason};
// {type:"decoded", number, decodeMs}; {type:"keyframe"} (a keyframe is needed: sent once per
// gap); {type:"error", message}.

/** @type {OffscreenCanvas | null} */
let canvas = null;
/** @type {OffscreenCanvasRenderingContext2D | null} */
let ctx = null;
/** @type {VideoDecoder | null} */
let decoder = null;
/** The last init message, to rebuild the decoder after an error. */
let config = null;
/** Pictures are skipped until a keyframe arrives (start, errors). */
let needKey = true;
let askedForKey = false;
/** When each picture went into the decoder, by its number (the chunk's timestamp). */
const started = new Map();

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

async function configure(init) {
  const wanted = { codec: init.codec, optimizeForLatency: true };
  let support;
  try {
    support = await VideoDecoder.isConfigSupported(wanted);
  } catch (e) {
    support = { supported: false, reason: e.message };
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
  decoder.configure(config);
  needKey = true;
  post({ type: "configured", codec: init.codec });
}

/** Decoding runs in order; configuring is async, so messages wait for it. */
let queue = Promise.resolve();

function onFrame(msg) {
  if (!config) return;
  if (!decoder || decoder.state === "closed") {
    newDecoder();
    decoder.configure(config);
  }
  if (needKey && !msg.keyframe) {
    wantKeyframe();
    return;
  }
  needKey = false;
  askedForKey = false;
  started.set(msg.number, performance.now());
  try {
    decoder.decode(new EncodedVideoChunk({ type: msg.keyframe ? "key" : "delta", timestamp: msg.number, data: msg.data }));
  } catch (e) {
    post({ type: "error", message: e.message });
    decoder = null;
    wantKeyframe();
  }
}

self.onmessage = (e) => {
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
