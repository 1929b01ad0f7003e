/* folkrnn-lens explorer: the linked views of one transcription.
 *
 * Plain JavaScript and canvas, no libraries and no network: the page is opened from
 * file://, so its data come only through <script> files (see explorer/data.py, the
 * data contract): explorer/meta.js at once, explorer/data/<array>.js when a view
 * first needs that array, explorer/score.js for the score. Each file calls
 * window.FOLKRNN_EXPLORER, defined below before any of them loads.
 *
 * Sections:
 *   0. utilities                 5. matrix view (menu, two panels, counts, readout)
 *   1. data loading              6. layers in motion
 *   2. matrices (computed here)  7. step view (score, predictions, trace)
 *   3. colours (bands)           8. unit view (LSTMVis select and match)
 *   4. matrix panels (canvas)    9. the public object and start-up
 *
 * Every n x n matrix is computed in the page from the (n, units) arrays, cached as a
 * Float32Array per name; entry (s, t) is m[s * n + t]. A panel draws column s, row t
 * as entry (s, t), so a cross matrix L{l}.{a}_x_{b} has b along the vertical axis.
 */
"use strict";

(function () {
  // ---- 0. utilities ---------------------------------------------------------------

  const GREY_DARK = 0.12; // the ends of the grey scale between the bands (figures/style.py)
  const GREY_LIGHT = 0.94;
  const ACCENT = "#e67e22"; // the selected step and range
  const DPR = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  const FOLDER = document.body.dataset.folder || "explorer";
  const SIGMOID_GATES = ["i", "f", "o"];

  const $ = (id) => document.getElementById(id);

  /** An element with attributes (and properties such as textContent) and children. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key in node && !key.startsWith("data")) node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

  /** A canvas of css size w x h, backed by w*DPR x h*DPR pixels; returns its context. */
  function sizeCanvas(canvas, w, h) {
    canvas.width = Math.round(w * DPR);
    canvas.height = Math.round(h * DPR);
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(DPR, 0, 0, DPR, 0, 0);
    return ctx;
  }

  /** [r, g, b] (0..255) of a CSS colour ("#c0392b", "powderblue", ...). */
  const colourProbe = document.createElement("canvas").getContext("2d");
  function parseColour(colour) {
    colourProbe.fillStyle = "#000000";
    colourProbe.fillStyle = String(colour);
    const hex = colourProbe.fillStyle; // the browser normalises to #rrggbb when opaque
    if (/^#[0-9a-f]{6}$/i.test(hex)) return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    showMessage(`colour ${JSON.stringify(colour)} of meta.js is not a CSS colour; grey is used`);
    return [128, 128, 128];
  }

  /** A visible message (never a blank page): what is missing or wrong. */
  function showMessage(text) {
    $("messages").append(el("div", { className: "message", textContent: text }));
  }

  /** Calls fn at most once per animation frame, with the latest arguments. */
  function perFrame(fn) {
    let args = null;
    return (...latest) => {
      if (args === null) requestAnimationFrame(() => { const a = args; args = null; fn(...a); });
      args = latest;
    };
  }

  // ---- 1. data loading -----------------------------------------------------------

  const data = { meta: null, arrays: new Map(), svg: null };
  const arrayPromises = new Map(); // name -> Promise of {name, rows, cols, values}

  /** A <script> file beside the page; resolves when it has run. */
  function loadScript(path) {
    return new Promise((resolve, reject) => {
      const script = el("script", { src: path });
      script.onload = () => resolve(path);
      script.onerror = () => reject(new Error(`could not load ${path}`));
      document.head.append(script);
    });
  }

  /** The float32 values (little-endian, row by row) of an array file's base64. */
  function decodeFloat32(base64, rows, cols) {
    const text = atob(base64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    if (bytes.length !== rows * cols * 4) {
      throw new Error(`array of ${rows} x ${cols} has ${bytes.length} bytes, not ${rows * cols * 4}`);
    }
    return new Float32Array(bytes.buffer);
  }

  /** The array (one row per step) of a name in meta.arrays: "softmax", "L2.h", ... */
  function loadArray(name) {
    if (!arrayPromises.has(name)) {
      const file = data.meta.arrays[name];
      const promise = !file
        ? Promise.reject(new Error(`meta.js lists no array ${name}`))
        : loadScript(`${FOLDER}/${file}`).then(() => {
            if (!data.arrays.has(name)) throw new Error(`${FOLDER}/${file} did not define array ${name}`);
            return data.arrays.get(name);
          });
      promise.catch((error) => showMessage(`Missing data: ${error.message} (array ${name}).`));
      arrayPromises.set(name, promise);
    }
    return arrayPromises.get(name);
  }

  const arrayKey = (layer, quantity) => `L${layer}.${quantity}`; // names.py array_name
  const ORIGINAL = "original:"; // a probe's page: the original tune's arrays (names.py)

  // ---- 2. matrices ---------------------------------------------------------------

  const MATRIX_BUDGET = 256 << 20; // bytes of cached matrices, before the oldest go
  const matrixCache = new Map(); // name -> Promise of Float32Array (n * n)
  const unitRowCache = new Map(); // array name -> Promise of Float64Array (unit rows)

  const specOf = (name) => data.meta.matrices.find((m) => m.name === name);

  /** Each row of an array scaled to unit L2 norm; an all-zero row stays zero. */
  function unitRows(name) {
    if (!unitRowCache.has(name)) {
      unitRowCache.set(name, loadArray(name).then(({ rows, cols, values }) => {
        const u = new Float64Array(rows * cols);
        for (let s = 0; s < rows; s++) {
          let sum = 0;
          for (let k = s * cols; k < (s + 1) * cols; k++) sum += values[k] * values[k];
          const norm = Math.sqrt(sum);
          if (norm > 0) for (let k = s * cols; k < (s + 1) * cols; k++) u[k] = values[k] / norm;
        }
        return { rows, cols, u };
      }));
    }
    return unitRowCache.get(name);
  }

  /** cos(a_s, b_t) for all s, t, clipped to [-1, 1]; symmetric: the upper half mirrored.
   * Two rows by two columns at a time: each value loaded serves two products, which
   * roughly halves the time of a long tune's matrix (the loads, not the sums, bound it). */
  function cosines(a, b, symmetric) {
    const n = a.rows, k = a.cols, x = a.u, y = b.u, m = new Float32Array(n * n);
    const put = (s, t, v) => {
      m[s * n + t] = clamp(v, -1, 1);
      if (symmetric) m[t * n + s] = m[s * n + t];
    };
    for (let s = 0; s < n; s += 2) {
      const s1 = Math.min(s + 1, n - 1), i0 = s * k, i1 = s1 * k;
      for (let t = symmetric ? s : 0; t < n; t += 2) {
        const t1 = Math.min(t + 1, n - 1), j0 = t * k, j1 = t1 * k;
        let d00 = 0, d01 = 0, d10 = 0, d11 = 0;
        for (let q = 0; q < k; q++) {
          const x0 = x[i0 + q], x1 = x[i1 + q], y0 = y[j0 + q], y1 = y[j1 + q];
          d00 += x0 * y0; d01 += x0 * y1; d10 += x1 * y0; d11 += x1 * y1;
        }
        put(s, t, d00); put(s, t1, d01); put(s1, t, d10); put(s1, t1, d11);
      }
    }
    return m;
  }

  /** X^T X of the one-hot inputs: 1 where two steps read the same token. */
  function onehotMatrix(tokens) {
    const n = tokens.length, m = new Float32Array(n * n);
    for (let s = 0; s < n; s++) for (let t = 0; t < n; t++) m[s * n + t] = tokens[s] === tokens[t] ? 1 : 0;
    return m;
  }

  /** ||p_s - p_t||_1 between softmax rows; 0 on the diagonal. */
  function l1Matrix({ rows: n, cols: k, values: p }) {
    const m = new Float32Array(n * n);
    for (let s = 0; s < n; s++) {
      for (let t = s + 1; t < n; t++) {
        let sum = 0;
        for (let i = s * k, j = t * k, end = i + k; i < end; i++, j++) sum += Math.abs(p[i] - p[j]);
        m[s * n + t] = m[t * n + s] = sum;
      }
    }
    return m;
  }

  async function computeMatrix(spec) {
    switch (spec.kind) {
      case "onehot":
        return onehotMatrix(data.meta.tokens);
      case "distance":
        return l1Matrix(await loadArray("softmax"));
      case "signed": {
        const u = await unitRows(arrayKey(spec.layer, spec.quantity));
        return cosines(u, u, true);
      }
      case "magnitude": {
        // |cos|: from the signed Gramian of the same array, computed (and cached) once
        const name = `${arrayKey(spec.layer, spec.quantity)}.signed`;
        const signed = await getMatrix(name, { ...spec, name, kind: "signed" });
        return signed.map(Math.abs);
      }
      case "cross": {
        const a = await unitRows(arrayKey(spec.layer, spec.quantity));
        const b = await unitRows(arrayKey(spec.layer, spec.quantity_b));
        return cosines(a, b, false);
      }
      case "difference": {
        // a probe's G' - G: its own Gramian less the original's, both from one batch
        const probed = await getMatrix(spec.gramian);
        const u = await unitRows(ORIGINAL + arrayKey(spec.layer, spec.quantity));
        const original = cosines(u, u, true);
        const magnitude = data.meta.reference.gramian === "abs";
        return probed.map((v, i) => v - (magnitude ? Math.abs(original[i]) : original[i]));
      }
      default:
        throw new Error(`unknown kind of matrix ${spec.kind}`);
    }
  }

  /** The matrix of a name (Float32Array, entry (s, t) at s * n + t), computed once;
   * spec: for a matrix meta.js does not list (a signed Gramian behind a |cos| one). */
  function getMatrix(name, spec) {
    if (!matrixCache.has(name)) {
      spec = specOf(name) || spec;
      if (!spec) return Promise.reject(new Error(`meta.js lists no matrix ${name}`));
      matrixCache.set(name, computeMatrix(spec));
      trimMatrixCache();
    }
    return matrixCache.get(name);
  }

  /** Forgets the oldest matrices once the cache holds more than MATRIX_BUDGET bytes. */
  function trimMatrixCache() {
    const bytes = data.meta.n_steps * data.meta.n_steps * 4;
    while (matrixCache.size * bytes > MATRIX_BUDGET && matrixCache.size > 4) {
      matrixCache.delete(matrixCache.keys().next().value);
    }
  }

  // ---- 3. colours ----------------------------------------------------------------

  let palette = null; // parsed meta.colours

  /** (low, high) of the band a kind of matrix uses. */
  function thresholds(kind) {
    const band = data.meta.bands[kind === "distance" ? "distance" : "cosine"];
    return [Number(band.low), Number(band.high)];
  }

  /** The band of one value, in words, as figures/style.py colours it. */
  function bandName(kind, v) {
    if (kind === "difference") return v > 0 ? "more alike in the probe" : v < 0 ? "less alike in the probe" : "unchanged";
    const [low, high] = thresholds(kind);
    if (kind === "distance") return v <= low ? "close (similar)" : v >= high ? "disjoint (dissimilar)" : "between (grey)";
    if (kind === "onehot") return Math.abs(v) >= high ? "the same token" : "different tokens";
    if (kind === "magnitude") return Math.abs(v) <= low ? "orthogonal (dissimilar)" : Math.abs(v) >= high ? "parallel (similar)" : "between (grey)";
    if (Math.abs(v) <= low) return "orthogonal (dissimilar)";
    return v >= high ? "same direction (similar)" : v <= -high ? "opposite" : "between (grey)";
  }

  /** A function value -> packed RGB (0xRRGGBB) of a kind: figures/style.py _band_colours;
   * a probe's G' - G diverges about 0 up to a scale, as the probe's figure does. */
  function colourOf(kind, scale) {
    const pack = ([r, g, b]) => (r << 16) | (g << 8) | b;
    if (kind === "difference") return (v) => pack(diverging(v, 0, scale));
    const [low, high] = thresholds(kind);
    const similar = pack(palette.similar), dissimilar = pack(palette.dissimilar), opposite = pack(palette.opposite);
    const grey = (darkness) => {
      const g = Math.round((GREY_LIGHT - clamp(darkness, 0, 1) * (GREY_LIGHT - GREY_DARK)) * 255);
      return (g << 16) | (g << 8) | g;
    };
    if (kind === "distance") {
      return (v) => (v >= high ? dissimilar : v <= low ? similar : grey(1 - (v - low) / (high - low)));
    }
    if (kind === "onehot" || kind === "magnitude") {
      return (v) => {
        const a = Math.abs(v);
        return a >= high ? similar : a <= low ? dissimilar : grey((a - low) / (high - low));
      };
    }
    return (v) => (v <= -high ? opposite : v >= high ? similar : Math.abs(v) <= low ? dissimilar : grey((v + high) / (2 * high)));
  }

  /** An n x n canvas of a matrix, one pixel per cell: pixel (column s, row t) = m[s, t]. */
  function matrixImage(m, n, kind, scale) {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = n;
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(n, n);
    const px = image.data, colour = colourOf(kind, scale);
    for (let t = 0; t < n; t++) {
      for (let s = 0; s < n; s++) {
        const c = colour(m[s * n + t]), k = (t * n + s) * 4;
        px[k] = c >> 16; px[k + 1] = (c >> 8) & 255; px[k + 2] = c & 255; px[k + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    return canvas;
  }

  /** Diverging colour of v about a centre: blue below, white at it, red above. */
  function diverging(v, centre, scale) {
    const x = clamp((v - centre) / (scale || 1), -1, 1);
    const blue = [33, 102, 172], red = [178, 24, 43], end = x < 0 ? blue : red, f = Math.abs(x);
    return end.map((c) => Math.round(255 + (c - 255) * f));
  }

  /** The colour scale of a probe's G' - G: max |G' - G| from probe.parquet. */
  const differenceScale = (spec) => (spec && spec.comparison ? spec.comparison.max_abs_difference : undefined);

  // ---- 4. matrix panels ----------------------------------------------------------

  const MARGIN = { left: 44, top: 16, right: 24, bottom: 44 };

  /** Bars and their centre steps, for bar numbers on the axes. */
  function barCentres() {
    const spans = new Map();
    data.meta.bars.forEach((bar, step) => {
      const span = spans.get(bar) || [step, step];
      spans.set(bar, [Math.min(span[0], step), Math.max(span[1], step)]);
    });
    return [...spans.entries()].map(([bar, [a, b]]) => ({ bar, first: a, last: b, centre: (a + b) / 2 }));
  }

  /**
   * One matrix on a canvas, with an overlay canvas above it for what changes on hover
   * (the cell outline, the selected step, the drag rectangle).
   * view: {c0, c1, r0, r1} steps shown (half-open), already offset for this panel.
   */
  class MatrixPanel {
    constructor(stack, side, handlers = {}) {
      this.side = side;
      this.base = el("canvas");
      this.overlay = el("canvas", { className: "overlay" });
      stack.replaceChildren(this.base, this.overlay);
      this.handlers = handlers;
      this.name = null;
      this.image = null;
      this.error = null;
      this.view = null;
      this.resize(side);
      if (handlers.interactive) this.listen();
    }

    resize(side) {
      this.side = side;
      const w = MARGIN.left + side + MARGIN.right, h = MARGIN.top + side + MARGIN.bottom;
      this.ctx = sizeCanvas(this.base, w, h);
      this.octx = sizeCanvas(this.overlay, w, h);
    }

    /** Shows a matrix (m: Float32Array n x n) of a kind. */
    setMatrix(name, m, kind) {
      this.name = name;
      this.kind = kind;
      this.m = m;
      this.error = null;
      this.image = matrixImage(m, data.meta.n_steps, kind, differenceScale(specOf(name)));
    }

    setError(name, text) {
      this.name = name;
      this.m = null;
      this.image = null;
      this.error = text;
    }

    /** Canvas x (css px) of the left edge of column step c; y of row step r. */
    x(c) { return MARGIN.left + ((c - this.view.c0) / (this.view.c1 - this.view.c0)) * this.side; }
    y(r) { return MARGIN.top + ((r - this.view.r0) / (this.view.r1 - this.view.r0)) * this.side; }

    /** Where a mouse event falls: {region, s (column step), t (row step), px, py}. */
    locate(event) {
      const box = this.overlay.getBoundingClientRect();
      const px = event.clientX - box.left, py = event.clientY - box.top, v = this.view;
      const s = Math.floor(v.c0 + ((px - MARGIN.left) / this.side) * (v.c1 - v.c0));
      const t = Math.floor(v.r0 + ((py - MARGIN.top) / this.side) * (v.r1 - v.r0));
      const inX = px >= MARGIN.left && px < MARGIN.left + this.side;
      const inY = py >= MARGIN.top && py < MARGIN.top + this.side;
      let region = "outside";
      if (inX && inY) region = "plot";
      else if (inY && px < MARGIN.left) region = "rows"; // the token axis on the left
      else if (inX && py >= MARGIN.top + this.side) region = "columns"; // the token axis below
      return { region, s: clamp(s, v.c0, v.c1 - 1), t: clamp(t, v.r0, v.r1 - 1), px, py };
    }

    /** Client coordinates of the centre of cell (s, t): for tests and tools. */
    cellCentre(s, t) {
      const box = this.overlay.getBoundingClientRect();
      return { x: box.left + (this.x(s) + this.x(s + 1)) / 2, y: box.top + (this.y(t) + this.y(t + 1)) / 2 };
    }

    draw(view) {
      this.view = view;
      const ctx = this.ctx, side = this.side;
      ctx.clearRect(0, 0, this.base.width, this.base.height);
      if (!this.image) {
        ctx.fillStyle = "#fff0f0";
        ctx.fillRect(MARGIN.left, MARGIN.top, side, side);
        ctx.fillStyle = "#b00020";
        ctx.font = "13px sans-serif";
        wrapText(ctx, this.error || "no matrix", MARGIN.left + 10, MARGIN.top + 24, side - 20);
        return;
      }
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.image, view.c0, view.r0, view.c1 - view.c0, view.r1 - view.r0, MARGIN.left, MARGIN.top, side, side);
      this.drawBarLines();
      this.drawLabels();
      ctx.strokeStyle = "#444";
      ctx.lineWidth = 1;
      ctx.strokeRect(MARGIN.left - 0.5, MARGIN.top - 0.5, side + 1, side + 1);
    }

    /** Thin lines through the bar-line tokens' rows and columns (as the PNGs). */
    drawBarLines() {
      const ctx = this.ctx, v = this.view, side = this.side;
      ctx.save();
      ctx.beginPath();
      ctx.rect(MARGIN.left, MARGIN.top, side, side);
      ctx.clip();
      ctx.strokeStyle = palette.bar_lines;
      ctx.globalAlpha = 0.6;
      ctx.lineWidth = 0.6;
      ctx.beginPath();
      data.meta.bar_lines.forEach((isBar, k) => {
        if (!isBar) return;
        if (k >= v.c0 && k < v.c1) {
          const x = (this.x(k) + this.x(k + 1)) / 2;
          ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, MARGIN.top + side);
        }
        if (k >= v.r0 && k < v.r1) {
          const y = (this.y(k) + this.y(k + 1)) / 2;
          ctx.moveTo(MARGIN.left, y); ctx.lineTo(MARGIN.left + side, y);
        }
      });
      ctx.stroke();
      ctx.restore();
    }

    /** Bar numbers along the top and right; tokens along the left and bottom where they fit. */
    drawLabels() {
      const ctx = this.ctx, v = this.view, side = this.side, meta = data.meta;
      ctx.fillStyle = "#555";
      ctx.font = "9px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      let lastX = -1e9, lastY = -1e9;
      for (const { bar, centre } of barCentres()) {
        if (centre >= v.c0 && centre < v.c1) {
          const x = this.x(centre + 0.5);
          if (x - lastX > 16) { ctx.fillText(String(bar), x, MARGIN.top - 3); lastX = x; }
        }
      }
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      for (const { bar, centre } of barCentres()) {
        if (centre >= v.r0 && centre < v.r1) {
          const y = this.y(centre + 0.5);
          if (y - lastY > 11) { ctx.fillText(String(bar), MARGIN.left + side + 4, y); lastY = y; }
        }
      }
      // tokens: every k-th where the cells are narrower than a label
      const cell = side / (v.c1 - v.c0), stride = Math.max(1, Math.ceil(8 / cell));
      const size = clamp(cell * 0.9, 6, 10);
      // a probe's changed inputs in bold, in the similar colour, as its figure marks them
      const changed = new Set(meta.reference ? meta.reference.changed : []);
      const style = (k) => {
        ctx.font = `${changed.has(k) ? "bold " : ""}${size}px monospace`;
        ctx.fillStyle = changed.has(k) ? meta.colours.similar : "#555";
      };
      ctx.textAlign = "right";
      for (let t = v.r0; t < v.r1; t++) {
        if ((t - v.r0) % stride && !changed.has(t)) continue;
        style(t);
        ctx.fillText(clip(meta.tokens[t], 6), MARGIN.left - 3, (this.y(t) + this.y(t + 1)) / 2);
      }
      for (let s = v.c0; s < v.c1; s++) {
        if ((s - v.c0) % stride && !changed.has(s)) continue;
        style(s);
        ctx.save();
        ctx.translate((this.x(s) + this.x(s + 1)) / 2, MARGIN.top + side + 3);
        ctx.rotate(-Math.PI / 2);
        ctx.fillText(clip(meta.tokens[s], 6), 0, 0);
        ctx.restore();
      }
    }

    /** The overlay: selected range and step, hover outline, drag rectangle. */
    drawOverlay(hover, drag) {
      const ctx = this.octx, v = this.view, side = this.side;
      ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
      if (!v) return;
      ctx.save();
      ctx.beginPath();
      ctx.rect(MARGIN.left, MARGIN.top, side, side);
      ctx.clip();
      const offset = this.handlers.offset ? this.handlers.offset() : 0;
      const range = state.range;
      if (range) {
        ctx.fillStyle = "rgba(230, 126, 34, 0.18)";
        const a = range[0] + offset, b = range[1] + offset;
        ctx.fillRect(this.x(a), this.y(a), this.x(b) - this.x(a), this.y(b) - this.y(a));
      }
      if (state.step !== null) {
        const k = state.step + offset;
        ctx.strokeStyle = ACCENT;
        ctx.lineWidth = 1.2;
        ctx.setLineDash([5, 3]);
        ctx.beginPath();
        const x = (this.x(k) + this.x(k + 1)) / 2, y = (this.y(k) + this.y(k + 1)) / 2;
        ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, MARGIN.top + side);
        ctx.moveTo(MARGIN.left, y); ctx.lineTo(MARGIN.left + side, y);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      if (hover) {
        ctx.strokeStyle = "#000";
        ctx.lineWidth = 1.5;
        const x0 = this.x(hover.s), y0 = this.y(hover.t);
        ctx.strokeRect(x0 - 1, y0 - 1, Math.max(3, this.x(hover.s + 1) - x0) + 2, Math.max(3, this.y(hover.t + 1) - y0) + 2);
      }
      if (drag) {
        ctx.strokeStyle = "#000";
        ctx.setLineDash([4, 2]);
        ctx.strokeRect(Math.min(drag.x0, drag.x1), Math.min(drag.y0, drag.y1), Math.abs(drag.x1 - drag.x0), Math.abs(drag.y1 - drag.y0));
      }
      ctx.restore();
    }

    /** Mouse: hover readout, click to select a step, drag to zoom, double-click to reset. */
    listen() {
      const h = this.handlers;
      let drag = null;
      const hover = perFrame((event) => {
        if (!this.view || !this.m) return;
        const at = this.locate(event);
        if (drag) {
          drag.x1 = at.px; drag.y1 = at.py; drag.s1 = at.s; drag.t1 = at.t;
          this.drawOverlay(null, drag);
        } else if (at.region === "plot") h.hover(at.s, at.t);
        else h.hover(null);
      });
      this.overlay.addEventListener("mousemove", hover);
      this.overlay.addEventListener("mouseleave", () => { if (!drag) h.hover(null); });
      this.overlay.addEventListener("mousedown", (event) => {
        const at = this.locate(event);
        if (at.region === "plot" && event.button === 0) drag = { x0: at.px, y0: at.py, x1: at.px, y1: at.py, s0: at.s, t0: at.t, s1: at.s, t1: at.t };
        event.preventDefault();
      });
      window.addEventListener("mouseup", (event) => {
        if (!drag) return;
        const d = drag;
        drag = null;
        const at = this.locate(event);
        if (Math.abs(at.px - d.x0) < 4 && Math.abs(at.py - d.y0) < 4) h.select(d.t0); // a click: the row's step
        else h.zoom(Math.min(d.s0, at.s), Math.max(d.s0, at.s) + 1, Math.min(d.t0, at.t), Math.max(d.t0, at.t) + 1);
      });
      this.overlay.addEventListener("click", (event) => {
        const at = this.locate(event);
        if (at.region === "rows") h.select(at.t);
        if (at.region === "columns") h.select(at.s);
      });
      this.overlay.addEventListener("dblclick", () => h.zoom(null));
    }
  }

  const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);

  function wrapText(ctx, text, x, y, width) {
    let line = "";
    for (const word of text.split(" ")) {
      if (ctx.measureText(line + word).width > width && line) { ctx.fillText(line, x, y); y += 17; line = ""; }
      line += word + " ";
    }
    ctx.fillText(line, x, y);
  }

  // ---- 5. matrix view ------------------------------------------------------------

  const state = {
    matrix: null, // the left panel's matrix
    second: null, // the right panel's
    shift: false, // compare (s, t) on the left with (s + 1, t + 1) on the right
    zoom: null, // {c0, c1, r0, r1} in the left panel's steps, or null: the whole tune
    step: null, // the selected step (an index into meta.steps)
    range: null, // the selected range [start, stop) of the unit view
    layer: null, quantity: null, threshold: null, units: [], matches: [],
    animation: null, frame: 0,
  };
  const timings = { matrixSwitches: [] };
  let panelA = null, panelB = null, menuItems = [];

  /** The side of a matrix panel that fits the window (css px). */
  function panelSide() {
    const free = (document.documentElement.clientWidth || 1200) - 190 - 330 - 2 * (MARGIN.left + MARGIN.right) - 90;
    return Math.round(clamp(free / 2, 240, 560));
  }

  /** The steps both panels show: the zoom, within 0..n (0..n-1 with the shift). */
  function panelViews() {
    const n = data.meta.n_steps, length = state.shift ? n - 1 : n;
    const z = state.zoom || { c0: 0, c1: length, r0: 0, r1: length };
    const v = { c0: z.c0, c1: Math.min(z.c1, length), r0: z.r0, r1: Math.min(z.r1, length) };
    const off = state.shift ? 1 : 0;
    return [v, { c0: v.c0 + off, c1: v.c1 + off, r0: v.r0 + off, r1: v.r1 + off }];
  }

  function drawPanels() {
    const [a, b] = panelViews();
    panelA.draw(a);
    panelB.draw(b);
    drawMatrixOverlays();
  }

  let hovered = null; // {s, t} in the left panel's steps
  function drawMatrixOverlays() {
    const off = state.shift ? 1 : 0;
    panelA.drawOverlay(hovered);
    panelB.drawOverlay(hovered && { s: hovered.s + off, t: hovered.t + off });
  }

  function buildMatrixView() {
    const meta = data.meta, side = panelSide();
    const handlers = (offset) => ({
      interactive: true,
      offset: () => (offset && state.shift ? 1 : 0),
      hover: (s, t) => {
        const off = offset && state.shift ? 1 : 0;
        hovered = s === null ? null : { s: s - off, t: t - off };
        showReadout();
        drawMatrixOverlays();
      },
      select: (k) => selectStep(k - (offset && state.shift ? 1 : 0)),
      zoom: (c0, c1, r0, r1) => {
        const off = offset && state.shift ? 1 : 0;
        state.zoom = c0 === null || c1 - c0 < 2 || r1 - r0 < 2 ? (c0 === null ? null : state.zoom)
          : { c0: c0 - off, c1: c1 - off, r0: r0 - off, r1: r1 - off };
        drawPanels();
      },
    });
    panelA = new MatrixPanel(document.querySelector("#panel-a .stack"), side, handlers(false));
    panelB = new MatrixPanel(document.querySelector("#panel-b .stack"), side, handlers(true));

    // the menu, grouped: a probe's G' - G first, tokens and softmax, then each layer
    const menu = $("matrix-menu");
    const groupOf = (spec) => (spec.kind === "difference" ? "G' − G, probe against original"
      : spec.layer === null ? "inputs and outputs" : `layer ${spec.layer}`);
    let group = undefined;
    for (const spec of meta.matrices) {
      if (groupOf(spec) !== group) {
        group = groupOf(spec);
        menu.append(el("div", { className: "group", textContent: group }));
      }
      const item = el("div", { className: "item", title: spec.description, "data-name": spec.name },
        spec.name, el("span", { className: "kind", textContent: spec.kind }));
      item.addEventListener("click", () => selectMatrix(spec.name));
      menu.append(item);
      menuItems.push(item);
      $("second-matrix").append(el("option", { value: spec.name, textContent: spec.name }));
    }
    $("second-matrix").addEventListener("change", (e) => selectSecond(e.target.value));
    $("shift").addEventListener("change", (e) => { state.shift = e.target.checked; drawPanels(); showReadout(); });
    document.addEventListener("keydown", onKey);
  }

  /** The default left matrix: layer 2's h (or the first Gramian); the right: X^T X. */
  function defaultMatrices() {
    const names = data.meta.matrices.map((m) => m.name);
    const differences = data.meta.matrices.filter((m) => m.kind === "difference");
    if (differences.length) { // a probe's page: G' - G of layer 2 (or the first) beside G'
      const first = differences.find((m) => m.layer === 2 && m.quantity === "h") || differences[0];
      return [first.name, first.gramian];
    }
    const gramian = names.includes("L2.h.abs") ? "L2.h.abs"
      : (data.meta.matrices.find((m) => m.kind === "magnitude") || data.meta.matrices[0]).name;
    const second = names.includes("onehot") ? "onehot" : names[0];
    return [gramian, second];
  }

  /** Loads (or computes) a matrix into a panel; errors are drawn in the panel. */
  async function showInPanel(panel, name) {
    const spec = specOf(name);
    try {
      const m = await getMatrix(name);
      panel.setMatrix(name, m, spec.kind);
    } catch (error) {
      panel.setError(name, `${name}: ${error.message}`);
    }
  }

  let selectToken = 0;
  async function selectMatrix(name) {
    const started = performance.now(), token = ++selectToken;
    state.matrix = name;
    menuItems.forEach((item) => item.classList.toggle("selected", item.dataset.name === name));
    const item = menuItems.find((i) => i.dataset.name === name);
    if (item) item.scrollIntoView({ block: "nearest" });
    await showInPanel(panelA, name);
    if (token !== selectToken) return;
    const spec = specOf(name);
    $("caption-a").textContent = `${name} — ${spec.kind}`;
    $("matrix-description").textContent = spec.description || "";
    showLegend(spec.kind, differenceScale(spec));
    showCounts(spec);
    drawPanels();
    showReadout();
    const took = performance.now() - started;
    timings.matrixSwitches.push({ name, ms: took });
    if (timings.firstHeatmap === undefined) timings.firstHeatmap = performance.now();
  }

  async function selectSecond(name) {
    state.second = name;
    $("second-matrix").value = name;
    await showInPanel(panelB, name);
    drawPanels();
    showReadout();
  }

  function onKey(event) {
    const target = event.target;
    if (target && ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(target.tagName)) return;
    const names = data.meta.matrices.map((m) => m.name), i = names.indexOf(state.matrix);
    const keys = {
      ArrowDown: () => selectMatrix(names[Math.min(names.length - 1, i + 1)]),
      j: () => selectMatrix(names[Math.min(names.length - 1, i + 1)]),
      ArrowUp: () => selectMatrix(names[Math.max(0, i - 1)]),
      k: () => selectMatrix(names[Math.max(0, i - 1)]),
      ArrowLeft: () => selectStep((state.step ?? 0) - 1),
      ArrowRight: () => selectStep((state.step ?? -1) + 1),
      Escape: () => { state.zoom = null; drawPanels(); },
    };
    if (keys[event.key]) { keys[event.key](); event.preventDefault(); }
  }

  function showLegend(kind, scale) {
    const c = data.meta.colours;
    const swatch = (colour) => el("span", { className: "swatch", style: `background:${colour}` });
    if (kind === "difference") {
      const rgb = (v) => `rgb(${diverging(v, 0, scale).join(",")})`;
      const bar = `linear-gradient(90deg,${rgb(-scale)},${rgb(0)},${rgb(scale)})`;
      $("legend").replaceChildren(el("div", {}, swatch(bar),
        `G' − G from −${scale.toPrecision(3)} (blue: less alike in the probe) through 0 (white) to +${scale.toPrecision(3)} (red: more alike)`));
      return;
    }
    const [low, high] = thresholds(kind);
    const rows = {
      onehot: [[c.dissimilar, "0: different tokens"], [c.similar, "1: the same token"]],
      distance: [[c.similar, `≤ ${low}: close (nearly the same distribution)`], ["linear-gradient(90deg,#1f1f1f,#f0f0f0)", "grey: darker = closer"], [c.dissimilar, `≥ ${high}: disjoint`]],
      magnitude: [[c.dissimilar, `|cos| ≤ ${low}: orthogonal`], ["linear-gradient(90deg,#f0f0f0,#1f1f1f)", "grey: darker = smaller angle"], [c.similar, `|cos| ≥ ${high}: parallel`]],
      signed: [[c.similar, `cos ≥ ${high}: same direction`], ["linear-gradient(90deg,#f0f0f0,#1f1f1f)", "grey: darker = smaller angle"], [c.dissimilar, `|cos| ≤ ${low}: orthogonal`], [c.opposite, `cos ≤ ${-high}: opposite`]],
    };
    const list = rows[kind] || rows.signed;
    $("legend").replaceChildren(...list.map(([colour, text]) => el("div", {}, swatch(colour), text)));
  }

  /** The band counts of summary.parquet, as meta.js carries them. */
  function showCounts(spec) {
    const counts = spec.counts, table = $("counts");
    const row = (title, key, value) => el("tr", {}, el("th", { textContent: title }), el("td", { className: "num", "data-key": key, textContent: String(value) }));
    $("counts-title").textContent = spec.comparison ? "The probe against the original (probe.parquet)" : "Band counts (summary.parquet)";
    if (spec.comparison) { // a probe's G' - G: the numbers of probe.parquet
      const titles = { relative_frobenius: "‖G' − G‖F / ‖G‖F", max_abs_difference: "max |G' − G|", cka: "linear CKA(G, G')", pearson: "Pearson r, off-diagonal" };
      table.replaceChildren(...Object.entries(titles).map(([key, title]) => row(title, key, Number(spec.comparison[key]).toPrecision(4))));
      return;
    }
    if (!counts) {
      const why = data.meta.reference ? "a probed tune has no summary.parquet: no band counts" : `summary.parquet has no row for ${spec.name}`;
      table.replaceChildren(el("tr", {}, el("td", { textContent: why })));
      return;
    }
    const names = {
      pairs: "pairs", n_pairs: "pairs of different steps", n_low: `low band (${spec.kind === "distance" ? "d ≤" : "|v| ≤"} ${counts.low_threshold})`,
      n_high: `high band (${spec.kind === "distance" ? "d ≥" : spec.kind === "magnitude" || spec.kind === "onehot" ? "|v| ≥" : "v ≥"} ${counts.high_threshold})`,
      n_opposite: `opposite (v ≤ ${-counts.high_threshold})`, low_threshold: "low threshold", high_threshold: "high threshold",
    };
    table.replaceChildren(...Object.keys(names).filter((key) => counts[key] !== null && counts[key] !== undefined)
      .map((key) => row(names[key], key, counts[key])));
  }

  /** The readout of the cell under the pointer: both steps, the value and its band, one
   * column per panel; each column's data-* attributes carry the same for tests. */
  function showReadout() {
    const meta = data.meta, off = state.shift ? 1 : 0;
    const step = (k) => `${meta.steps[k]} “${meta.tokens[k]}” bar ${meta.bars[k]}`;
    const columns = [["left", panelA, 0], ["right", panelB, off]].map(([label, panel, o]) => {
      const cells = { label, matrix: panel.name || "" };
      if (hovered && panel.m) {
        const s = hovered.s + o, t = hovered.t + o, v = panel.m[s * meta.n_steps + t];
        Object.assign(cells, { s, t, value: v.toFixed(6), band: bandName(panel.kind, v), column: step(s), row: step(t),
          columnToken: meta.tokens[s], rowToken: meta.tokens[t], columnBar: meta.bars[s], rowBar: meta.bars[t] });
      }
      return cells;
    });
    const rows = [["", "label"], ["matrix", "matrix"], ["column step", "column"], ["row step", "row"], ["value", "value"], ["band", "band"]];
    const table = $("readout");
    table.replaceChildren(...rows.map(([title, key]) => el("tr", {}, el("th", { textContent: title }),
      ...columns.map((c) => el("td", { className: key, textContent: String(c[key] ?? "") })))));
    columns.forEach((c) => {
      const holder = table.querySelector(`#readout-${c.label}`) || el("tr", { id: `readout-${c.label}`, hidden: true });
      for (const key of Object.keys(holder.dataset)) delete holder.dataset[key];
      for (const key of ["s", "t", "value", "band", "columnToken", "rowToken", "columnBar", "rowBar"]) {
        if (c[key] !== undefined) holder.dataset[key] = String(c[key]);
      }
      table.append(holder);
    });
  }

  // ---- 6. layers in motion -------------------------------------------------------

  const THUMBNAIL_SIDE = 170;
  let motionPanels = [], thumbnails = [], motionTimer = null;

  function buildMotionView() {
    const choice = $("motion-choice"), meta = data.meta;
    if (!meta.animations || !meta.animations.length) {
      $("motion-panels").replaceChildren(el("div", { className: "note", textContent: "meta.js lists no animations." }));
      return;
    }
    meta.animations.forEach((a, i) => choice.append(el("option", { value: String(i), textContent: a.title || a.name })));
    const preferred = ["h.diff", "h.abs"].map((name) => meta.animations.findIndex((a) => a.name === name)).find((i) => i >= 0) ?? 0;
    choice.value = String(Math.max(0, preferred));
    choice.addEventListener("change", () => showAnimation(Number(choice.value)));
    $("motion-play").addEventListener("click", () => (motionTimer ? pauseMotion() : playMotion()));
    $("motion-prev").addEventListener("click", () => { pauseMotion(); showFrame(state.frame - 1); });
    $("motion-next").addEventListener("click", () => { pauseMotion(); showFrame(state.frame + 1); });
    $("motion-slider").addEventListener("input", (e) => { pauseMotion(); showFrame(Number(e.target.value)); });
    showAnimation(Number(choice.value));
  }

  function showAnimation(index) {
    const animation = data.meta.animations[index], count = Math.max(...animation.frames.map((f) => f.length));
    state.animation = animation.name;
    const side = count > 1 ? 300 : 380;
    motionPanels = Array.from({ length: count }, () => {
      const stack = el("div", { className: "stack" });
      $("motion-panels").append(stack);
      return new MatrixPanel(stack, side);
    });
    $("motion-panels").replaceChildren(...motionPanels.map((p) => p.base.parentNode), buildThumbnails(animation));
    $("motion-slider").max = String(animation.frames.length - 1);
    showFrame(0);
  }

  /** Every frame small, side by side: the current one framed; a click shows it. */
  function buildThumbnails(animation) {
    const strip = el("div", { className: "thumbnails" });
    const n = data.meta.n_steps;
    thumbnails = animation.frames.map((names, i) => {
      const box = el("div", { className: "thumbnail" }), stack = el("div", { className: "stack" });
      box.append(el("div", { className: "caption", textContent: names.join(", ") }), stack);
      box.addEventListener("click", () => { pauseMotion(); showFrame(i); });
      strip.append(box);
      const panel = new MatrixPanel(stack, THUMBNAIL_SIDE);
      showInPanel(panel, names[0]).then(() => panel.draw({ c0: 0, c1: n, r0: 0, r1: n }));
      return box;
    });
    return strip;
  }

  async function showFrame(index) {
    const animation = data.meta.animations.find((a) => a.name === state.animation);
    const frames = animation.frames, i = ((index % frames.length) + frames.length) % frames.length;
    state.frame = i;
    $("motion-slider").value = String(i);
    thumbnails.forEach((box, k) => box.classList.toggle("current", k === i));
    const names = frames[i];
    await Promise.all(names.map((name, k) => showInPanel(motionPanels[k], name)));
    if (state.frame !== i) return;
    const n = data.meta.n_steps;
    motionPanels.forEach((p) => p.draw({ c0: 0, c1: n, r0: 0, r1: n }));
    const layers = names.map((name) => (specOf(name) || {}).layer);
    $("motion-caption").textContent = `${names.join(", ")} — layer ${layers.join(", ")} (${i + 1} of ${frames.length})`;
  }

  function playMotion() {
    $("motion-play").textContent = "pause";
    const frames = data.meta.animations.find((a) => a.name === state.animation).frames.length;
    // as the GIFs: each frame frame_seconds, the last pause_seconds longer (analysis.animation)
    const frameMs = 1000 * data.meta.frame_seconds, pauseMs = 1000 * data.meta.pause_seconds;
    const tick = () => {
      const last = state.frame === frames - 1;
      motionTimer = setTimeout(() => { showFrame(state.frame + 1); tick(); }, last ? frameMs + pauseMs : frameMs);
    };
    tick();
  }

  function pauseMotion() {
    clearTimeout(motionTimer);
    motionTimer = null;
    $("motion-play").textContent = "play";
  }

  // ---- 7. step view --------------------------------------------------------------

  const TRACE = { left: MARGIN.left, right: MARGIN.right, top: 10, bottom: 30 };
  let staffBoxes = [];

  /** Selects a step everywhere: matrix panels, score, predictions, traces. */
  function selectStep(k) {
    if (!Number.isFinite(k)) return;
    state.step = clamp(Math.round(k), 0, data.meta.n_steps - 1);
    drawMatrixOverlays();
    highlightBar(data.meta.bars[state.step]);
    showPredictions(state.step);
    drawStepTrace();
    drawUnitTrace();
  }

  function loadScore() {
    const box = $("score");
    if (!data.meta.score) {
      box.replaceChildren(el("div", { className: "note", textContent: "No score: this transcription has no score.js (abcm2ps drew none)." }));
      return Promise.resolve();
    }
    return loadScript(`${FOLDER}/score.js`).then(() => {
      if (data.svg === null) throw new Error(`${FOLDER}/score.js did not define the score`);
      box.innerHTML = data.svg;
      staffBoxes = findStaves(box.querySelector("svg"));
      if (state.step !== null) highlightBar(data.meta.bars[state.step]);
    }).catch((error) => {
      box.replaceChildren(el("div", { className: "note", textContent: `No score: ${error.message}.` }));
      showMessage(`Missing data: ${error.message} (the score).`);
    });
  }

  /** The bounding boxes of the staves: wide, short paths (five lines drawn as one). */
  function findStaves(svg) {
    if (!svg) return [];
    const boxes = [];
    for (const path of svg.querySelectorAll("path")) {
      try {
        const b = path.getBBox();
        if (b.width > 150 && b.height >= 8 && b.height <= 60) boxes.push({ x0: b.x, x1: b.x + b.width, y0: b.y, y1: b.y + b.height });
      } catch (error) { /* not rendered */ }
    }
    return boxes;
  }

  /** The region of a bar on the score: [x0, x1] from its number to the next on the line. */
  function barRegion(bar) {
    const positions = data.meta.score_bars || [];
    const i = positions.findIndex(([b]) => b === bar);
    if (i < 0) return null;
    const [, x, y] = positions[i];
    const staff = staffBoxes.find((s) => x >= s.x0 - 40 && x <= s.x1 && s.y0 >= y - 20 && s.y0 <= y + 60);
    const next = positions.slice(i + 1).find(([, nx, ny]) => Math.abs(ny - y) <= 20 && nx > x);
    const svg = $("score").querySelector("svg");
    const right = staff ? staff.x1 : (svg ? parseFloat(svg.getAttribute("width")) - 20 : x + 100);
    const x1 = next ? next[1] : right;
    const y0 = staff ? Math.min(y - 12, staff.y0 - 6) : y - 12;
    const y1 = staff ? Math.max(y + 40, staff.y1 + 8) : y + 40;
    return { x0: x - 2, x1: x1 - 2, y0, y1 };
  }

  function highlightBar(bar) {
    const svg = $("score").querySelector("svg");
    if (!svg) return;
    svg.querySelectorAll(".bar-highlight").forEach((r) => r.remove());
    const region = barRegion(bar);
    if (!region) return;
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("class", "bar-highlight");
    rect.setAttribute("data-bar", String(bar));
    rect.setAttribute("x", region.x0.toFixed(1));
    rect.setAttribute("width", (region.x1 - region.x0).toFixed(1));
    rect.setAttribute("y", region.y0.toFixed(1));
    rect.setAttribute("height", (region.y1 - region.y0).toFixed(1));
    svg.append(rect);
  }

  /** The model's likeliest next tokens at a step, beside the token that came next. */
  function showPredictions(k) {
    const meta = data.meta, next = meta.next_tokens[k], top = meta.top[k] || [];
    const p = Math.exp(-meta.surprisal[k]);
    const rows = top.map(([token, prob], rank) => el("tr", { className: token === next ? "next" : "" },
      el("td", { textContent: String(rank + 1) }), el("td", { className: "token", textContent: token }),
      el("td", { textContent: prob.toFixed(4) }), el("td", {}, el("span", { className: "bar", style: `width:${Math.round(prob * 120)}px` })),
      el("td", { textContent: token === next ? "← came next" : "" })));
    if (!top.some(([token]) => token === next)) {
      rows.push(el("tr", { className: "next" }, el("td", { textContent: "…" }), el("td", { className: "token", textContent: next }),
        el("td", { textContent: p.toFixed(4) }), el("td", {}, el("span", { className: "bar", style: `width:${Math.round(p * 120)}px` })),
        el("td", { textContent: "← came next (not in the top 5)" })));
    }
    $("predictions").replaceChildren(
      el("div", {}, el("b", { textContent: `step ${meta.steps[k]}` }), ` reads “${meta.tokens[k]}” (bar ${meta.bars[k]}); next came “${next}”`),
      el("div", { className: "muted", textContent: `surprisal ${meta.surprisal[k].toFixed(3)} nats (p = ${p.toFixed(4)}), entropy ${meta.entropy[k].toFixed(3)} nats` }),
      el("div", { className: "muted", style: "margin-top:6px", textContent: "the model's likeliest next tokens:" }),
      el("table", {}, ...rows));
  }

  /** A trace over the tune's steps on a canvas, with bar lines and the selection. */
  class Trace {
    constructor(stack, height, handlers) {
      this.base = el("canvas");
      this.overlay = el("canvas", { className: "overlay" });
      stack.classList.add("stack");
      stack.style.position = "relative";
      stack.replaceChildren(this.base, this.overlay);
      this.height = height;
      this.handlers = handlers;
      this.resize();
      this.listen();
    }

    resize() {
      this.width = Math.max(500, Math.min(1400, (document.documentElement.clientWidth || 1200) - 70));
      this.ctx = sizeCanvas(this.base, this.width, this.height);
      this.octx = sizeCanvas(this.overlay, this.width, this.height);
    }

    get plotWidth() { return this.width - TRACE.left - TRACE.right; }
    x(step) { return TRACE.left + (step / data.meta.n_steps) * this.plotWidth; }
    stepAt(px) { return clamp(Math.floor(((px - TRACE.left) / this.plotWidth) * data.meta.n_steps), 0, data.meta.n_steps - 1); }
    clientX(step) { return this.overlay.getBoundingClientRect().left + this.x(step + 0.5); }

    /** Lines of series [{values, colour, label}] on a y range, bar lines and numbers below. */
    draw(series, yRange, extra) {
      const ctx = this.ctx, h = this.height, meta = data.meta, bottom = h - TRACE.bottom;
      ctx.clearRect(0, 0, this.width, h);
      ctx.strokeStyle = palette.bar_lines;
      ctx.globalAlpha = 0.5;
      ctx.beginPath();
      meta.bar_lines.forEach((isBar, k) => { if (isBar) { const x = this.x(k + 0.5); ctx.moveTo(x, TRACE.top); ctx.lineTo(x, bottom); } });
      ctx.stroke();
      ctx.globalAlpha = 1;
      const [lo, hi] = yRange, y = (v) => bottom - ((v - lo) / (hi - lo || 1)) * (bottom - TRACE.top);
      if (extra) extra(ctx, y);
      for (const { values, colour } of series) {
        ctx.strokeStyle = colour;
        ctx.lineWidth = 1.3;
        ctx.beginPath();
        values.forEach((v, k) => (k ? ctx.lineTo(this.x(k + 0.5), y(v)) : ctx.moveTo(this.x(k + 0.5), y(v))));
        ctx.stroke();
      }
      ctx.strokeStyle = "#999";
      ctx.lineWidth = 1;
      ctx.strokeRect(TRACE.left - 0.5, TRACE.top - 0.5, this.plotWidth + 1, bottom - TRACE.top + 1);
      ctx.fillStyle = "#555";
      ctx.font = "9px sans-serif";
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(hi.toFixed(2), TRACE.left - 3, TRACE.top + 4);
      ctx.fillText(lo.toFixed(2), TRACE.left - 3, bottom - 4);
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      let lastX = -1e9;
      for (const { bar, centre } of barCentres()) {
        const x = this.x(centre + 0.5);
        if (x - lastX > 14) { ctx.fillText(String(bar), x, bottom + 4); lastX = x; }
      }
      ctx.textAlign = "left";
      let labelX = TRACE.left + 6;
      for (const { colour, label } of series) {
        if (!label) continue;
        ctx.fillStyle = colour;
        ctx.fillText(label, labelX, TRACE.top + 2);
        labelX += ctx.measureText(label).width + 14;
      }
      ctx.fillStyle = "#888";
      ctx.fillText("bar", 4, bottom + 4);
      this.drawOverlay();
    }

    /** The selected range (shaded), the selected step (a line), a drag in progress. */
    drawOverlay(drag) {
      const ctx = this.octx, bottom = this.height - TRACE.bottom;
      ctx.clearRect(0, 0, this.width, this.height);
      const range = drag ? [Math.min(drag.a, drag.b), Math.max(drag.a, drag.b) + 1] : this.handlers.showRange ? state.range : null;
      if (range) {
        ctx.fillStyle = "rgba(230, 126, 34, 0.2)";
        ctx.fillRect(this.x(range[0]), TRACE.top, this.x(range[1]) - this.x(range[0]), bottom - TRACE.top);
      }
      if (state.step !== null) {
        ctx.strokeStyle = ACCENT;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.moveTo(this.x(state.step + 0.5), TRACE.top);
        ctx.lineTo(this.x(state.step + 0.5), bottom);
        ctx.stroke();
      }
    }

    /** Click: a step; drag (where handlers.range): a range; click under the axis: a bar. */
    listen() {
      let drag = null;
      const px = (e) => e.clientX - this.overlay.getBoundingClientRect().left;
      const inBars = (e) => e.clientY - this.overlay.getBoundingClientRect().top > this.height - TRACE.bottom;
      this.overlay.addEventListener("mousedown", (e) => {
        if (inBars(e) && this.handlers.bar) { this.handlers.bar(data.meta.bars[this.stepAt(px(e))]); return; }
        drag = { a: this.stepAt(px(e)), b: this.stepAt(px(e)), x: px(e) };
        e.preventDefault();
      });
      this.overlay.addEventListener("mousemove", perFrame((e) => {
        const k = this.stepAt(px(e));
        this.handlers.hover(k);
        if (drag) { drag.b = k; if (this.handlers.range) this.drawOverlay(drag); }
      }));
      window.addEventListener("mouseup", (e) => {
        if (!drag) return;
        const d = drag;
        drag = null;
        d.b = this.stepAt(px(e));
        if (Math.abs(px(e) - d.x) < 4 || !this.handlers.range) selectStep(d.b);
        else this.handlers.range(Math.min(d.a, d.b), Math.max(d.a, d.b) + 1);
      });
    }
  }

  let stepTrace = null;

  function buildStepView() {
    stepTrace = new Trace($("trace-stack"), 170, {
      hover: (k) => {
        const m = data.meta;
        $("trace-readout").textContent = `step ${m.steps[k]} “${m.tokens[k]}” bar ${m.bars[k]}: surprisal ${m.surprisal[k].toFixed(3)}, entropy ${m.entropy[k].toFixed(3)} nats`;
      },
    });
    drawStepTrace();
  }

  function drawStepTrace() {
    if (!stepTrace) return;
    const m = data.meta, hi = Math.max(1, ...m.surprisal, ...m.entropy);
    stepTrace.draw([
      { values: m.surprisal, colour: "#c0392b", label: "surprisal (nats)" },
      { values: m.entropy, colour: "#2471a3", label: "entropy (nats)" },
    ], [0, hi]);
  }

  // ---- 8. unit view (LSTMVis select and match) -----------------------------------

  /** LSTMVis's select (explorer/units.py select_units): the units above the threshold at
   * every step of [start, stop) and not above it at start - 1 and at stop, where those
   * exist. Compared in float32, as NumPy compares a float32 array with a Python float. */
  function selectRule({ rows: n, cols, values }, start, stop, threshold) {
    if (!(Number.isInteger(start) && Number.isInteger(stop) && 0 <= start && start < stop && stop <= n)) {
      throw new RangeError(`steps ${start}..${stop - 1} are not a range of a tune of ${n} steps`);
    }
    const thr = Math.fround(threshold), units = [];
    for (let u = 0; u < cols; u++) {
      let on = true;
      for (let s = start; s < stop && on; s++) on = values[s * cols + u] > thr;
      if (on && start > 0) on = values[(start - 1) * cols + u] <= thr;
      if (on && stop < n) on = values[stop * cols + u] <= thr;
      if (on) units.push(u);
    }
    return units;
  }

  /** LSTMVis's match (units.py match_ranges): maximal runs of steps where at least one of
   * the units is above the threshold, other than the selection; ranked by overlap (units
   * above it at every step of the run), most first, then |length - selected length|,
   * then start. */
  function matchRule({ rows: n, cols, values }, units, threshold, selected) {
    if (!units.length) return [];
    const thr = Math.fround(threshold), on = (s, u) => values[s * cols + u] > thr;
    const anyOn = Array.from({ length: n }, (_, s) => units.some((u) => on(s, u)));
    const matches = [];
    for (let s = 0; s < n; s++) {
      if (!anyOn[s] || (s > 0 && anyOn[s - 1])) continue;
      let stop = s;
      while (stop < n && anyOn[stop]) stop++;
      if (s === selected[0] && stop === selected[1]) continue;
      let overlap = 0;
      for (const u of units) {
        let all = true;
        for (let k = s; k < stop && all; k++) all = on(k, u);
        if (all) overlap++;
      }
      matches.push({ start: s, stop, overlap, length: stop - s });
    }
    const length = selected[1] - selected[0];
    return matches.sort((a, b) => b.overlap - a.overlap || Math.abs(a.length - length) - Math.abs(b.length - length) || a.start - b.start);
  }

  const defaultThreshold = (quantity) => (SIGMOID_GATES.includes(quantity) ? 0.5 : 0);
  let unitTrace = null, unitMeans = null;

  function buildUnitView() {
    const meta = data.meta, layer = $("unit-layer"), quantity = $("unit-quantity"), threshold = $("unit-threshold");
    meta.layers.forEach((l) => layer.append(el("option", { value: String(l), textContent: String(l) })));
    meta.quantities.forEach((q) => quantity.append(el("option", { value: q, textContent: q })));
    state.layer = meta.layers.includes(2) ? 2 : meta.layers[0];
    state.quantity = meta.quantities.includes("h") ? "h" : meta.quantities[0];
    state.threshold = defaultThreshold(state.quantity);
    layer.value = String(state.layer);
    quantity.value = state.quantity;
    threshold.value = String(state.threshold);
    layer.addEventListener("change", () => { state.layer = Number(layer.value); updateUnits(true); });
    quantity.addEventListener("change", () => {
      state.quantity = quantity.value;
      state.threshold = defaultThreshold(state.quantity);
      threshold.value = String(state.threshold);
      updateUnits(true);
    });
    threshold.addEventListener("change", () => {
      const v = parseFloat(threshold.value);
      if (Number.isFinite(v)) { state.threshold = v; updateUnits(false); }
    });
    unitTrace = new Trace($("unit-trace-stack"), 150, {
      showRange: true,
      range: (start, stop) => selectRange(start, stop),
      bar: (bar) => {
        const steps = meta.bars.map((b, k) => (b === bar ? k : -1)).filter((k) => k >= 0);
        selectRange(steps[0], steps[steps.length - 1] + 1);
      },
      hover: (k) => {
        const v = unitMeans ? unitMeans[k] : NaN;
        $("unit-trace-readout").textContent = `step ${meta.steps[k]} “${meta.tokens[k]}” bar ${meta.bars[k]}: mean ${state.quantity} ${v.toFixed(4)}`;
      },
    });
    updateUnits(true);
  }

  /** The mean of an array's row per step. */
  function rowMeans({ rows, cols, values }) {
    const means = new Float64Array(rows);
    for (let s = 0; s < rows; s++) {
      let sum = 0;
      for (let u = 0; u < cols; u++) sum += values[s * cols + u];
      means[s] = sum / cols;
    }
    return Array.from(means);
  }

  let unitToken = 0;
  /** Recomputes the selection of the current layer, quantity, threshold and range. */
  async function updateUnits(newArray) {
    const token = ++unitToken, name = arrayKey(state.layer, state.quantity);
    let array;
    try {
      array = await loadArray(name);
    } catch (error) {
      $("unit-summary").textContent = `No activations: ${error.message}.`;
      return;
    }
    if (token !== unitToken) return;
    if (newArray || !unitMeans) {
      unitMeans = rowMeans(array);
      $("unit-trace-readout").textContent = "";
    }
    if (state.range) {
      state.units = selectRule(array, state.range[0], state.range[1], state.threshold);
      state.matches = matchRule(array, state.units, state.threshold, state.range);
    } else {
      state.units = [];
      state.matches = [];
    }
    drawUnitTrace();
    showUnits(array);
  }

  function selectRange(start, stop) {
    state.range = [start, stop];
    drawMatrixOverlays();
    drawStepTraceOverlay();
    updateUnits(false);
  }

  function drawStepTraceOverlay() { if (stepTrace) stepTrace.drawOverlay(); }

  const UNIT_LINES = 12; // selected units drawn as lines on the trace, at most

  /** The mean activation over all units, each selected unit's own (the first few), and
   * the threshold (dashed). */
  function drawUnitTrace() {
    if (!unitTrace || !unitMeans) return;
    const array = data.arrays.get(arrayKey(state.layer, state.quantity));
    const series = [{ values: unitMeans, colour: "#999", label: `mean ${arrayKey(state.layer, state.quantity)} over its units` }];
    if (array) {
      state.units.slice(0, UNIT_LINES).forEach((u, i) => series.push({
        values: Array.from({ length: array.rows }, (_, s) => array.values[s * array.cols + u]),
        colour: `hsl(${(20 + i * 47) % 360}, 70%, 40%)`, label: i < 6 ? `unit ${u}` : "",
      }));
    }
    const all = series.flatMap((x) => x.values);
    const lo = Math.min(...all, state.threshold), hi = Math.max(...all, state.threshold);
    unitTrace.draw(series, [lo, hi], (ctx, y) => {
      ctx.strokeStyle = "#333";
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(TRACE.left, y(state.threshold));
      ctx.lineTo(unitTrace.x(data.meta.n_steps), y(state.threshold));
      ctx.stroke();
      ctx.setLineDash([]);
    });
  }

  function showUnits(array) {
    const meta = data.meta, q = arrayKey(state.layer, state.quantity);
    if (!state.range) {
      $("unit-range").textContent = "no steps selected";
      $("unit-summary").textContent = "Drag across the trace to select steps (or click a bar number under it): the units on exactly there are listed.";
      $("unit-list").replaceChildren();
      $("match-list").replaceChildren();
      drawUnitHeatmap(array);
      return;
    }
    const [start, stop] = state.range;
    $("unit-range").textContent = `steps ${meta.steps[start]}–${meta.steps[stop - 1]} (bars ${meta.bars[start]}–${meta.bars[stop - 1]}, ${stop - start} steps)`;
    $("unit-summary").textContent = `${state.units.length} of ${array.cols} units of ${q} are > ${state.threshold} at every selected step and ≤ it just before and after:`;
    $("unit-list").replaceChildren(el("span", { id: "unit-indices", textContent: state.units.join(" ") || "(none)" }));
    const matches = state.matches.slice(0, 50).map((m) => {
      const button = el("button", { "data-start": String(m.start), "data-stop": String(m.stop),
        textContent: `steps ${meta.steps[m.start]}–${meta.steps[m.stop - 1]} (bar ${meta.bars[m.start]}${meta.bars[m.stop - 1] !== meta.bars[m.start] ? "–" + meta.bars[m.stop - 1] : ""}): ${m.overlap} of ${state.units.length} units on throughout, ${m.length} steps` });
      button.addEventListener("click", () => selectRange(m.start, m.stop));
      return button;
    });
    $("match-list").replaceChildren(...(matches.length ? matches : [el("div", { className: "note", textContent: "no other range" })]));
    drawUnitHeatmap(array);
  }

  /** The selected units' activations across the tune: one row per unit, diverging about
   * the threshold; aligned with the trace above. */
  function drawUnitHeatmap(array) {
    const canvas = $("unit-heatmap"), units = state.units, n = array.rows, cols = array.cols;
    const rowH = units.length ? clamp(Math.floor(240 / units.length), 2, 14) : 0;
    const width = unitTrace.width, height = Math.max(24, units.length * rowH + 8);
    const ctx = sizeCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    if (!units.length) {
      ctx.fillStyle = "#888";
      ctx.font = "12px sans-serif";
      ctx.fillText(state.range ? "no unit selected" : "", TRACE.left, 16);
      return;
    }
    let scale = 0;
    for (const u of units) for (let s = 0; s < n; s++) scale = Math.max(scale, Math.abs(array.values[s * cols + u] - state.threshold));
    const image = document.createElement("canvas");
    image.width = n;
    image.height = units.length;
    const ictx = image.getContext("2d"), pixels = ictx.createImageData(n, units.length);
    units.forEach((u, row) => {
      for (let s = 0; s < n; s++) {
        const [r, g, b] = diverging(array.values[s * cols + u], state.threshold, scale), k = (row * n + s) * 4;
        pixels.data[k] = r; pixels.data[k + 1] = g; pixels.data[k + 2] = b; pixels.data[k + 3] = 255;
      }
    });
    ictx.putImageData(pixels, 0, 0);
    ctx.imageSmoothingEnabled = false;
    const x0 = unitTrace.x(0), x1 = unitTrace.x(n);
    ctx.drawImage(image, 0, 0, n, units.length, x0, 4, x1 - x0, units.length * rowH);
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = 1.5;
    const [start, stop] = state.range;
    ctx.strokeRect(unitTrace.x(start), 3, unitTrace.x(stop) - unitTrace.x(start), units.length * rowH + 2);
    if (rowH >= 8) {
      ctx.fillStyle = "#555";
      ctx.font = `${Math.min(10, rowH)}px monospace`;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      units.forEach((u, row) => ctx.fillText(String(u), x0 - 3, 4 + (row + 0.5) * rowH));
    }
  }

  // ---- 9. the public object and start-up -----------------------------------------

  /** The page's object: the data files call meta, array and score; tests call the rest. */
  const api = window.FOLKRNN_EXPLORER = {
    meta(obj) { data.meta = obj; },
    array(name, rows, cols, base64) {
      try {
        data.arrays.set(name, { name, rows, cols, values: decodeFloat32(base64, rows, cols) });
      } catch (error) {
        showMessage(`Bad data: array ${name}: ${error.message}.`);
      }
    },
    score(svgText) { data.svg = svgText; },
    state,
    timings,
    /** Promise of the units LSTMVis's select picks (as units.py select_units). */
    selectUnits: (layer, quantity, start, stop, threshold) =>
      loadArray(arrayKey(layer, quantity)).then((a) => selectRule(a, start, stop, threshold)),
    /** Promise of the ranked matches of the units (default: those selectUnits picks). */
    matchRanges: (layer, quantity, start, stop, threshold, units) =>
      loadArray(arrayKey(layer, quantity)).then((a) =>
        matchRule(a, units || selectRule(a, start, stop, threshold), threshold, [start, stop])),
    /** Promise of entry (s, t) of a matrix, as the page computed it. */
    matrixValue: (name, s, t) => getMatrix(name).then((m) => m[s * data.meta.n_steps + t]),
    selectMatrix: (name) => selectMatrix(name),
    selectSecond: (name) => selectSecond(name),
    selectStep: (k) => selectStep(k),
    selectRange: (start, stop) => selectRange(start, stop),
    /** Client coordinates, for tests: a cell's centre in a panel ("a" or "b"), a step on a trace. */
    locate: {
      cell: (panel, s, t) => (panel === "b" ? panelB : panelA).cellCentre(s, t),
      traceStep: (step) => ({ x: stepTrace.clientX(step), y: stepTrace.overlay.getBoundingClientRect().top + 60 }),
      unitTraceStep: (step) => ({ x: unitTrace.clientX(step), y: unitTrace.overlay.getBoundingClientRect().top + 50 }),
    },
    ready: null,
  };

  async function start() {
    try {
      await loadScript(`${FOLDER}/meta.js`);
    } catch (error) {
      throw new Error(`${error.message}: the page needs its data folder ${FOLDER}/ beside it`);
    }
    const meta = data.meta;
    if (!meta) throw new Error(`${FOLDER}/meta.js did not define the transcription's meta`);
    palette = Object.fromEntries(Object.entries(meta.colours).map(([k, v]) => [k, parseColour(v)]));
    palette.bar_lines = meta.colours.bar_lines;
    $("subtitle").textContent = `${meta.name}: ${meta.n_steps} steps` + (meta.window ? ` (steps ${meta.window[0]}–${meta.window[1] - 1})` : "") +
      `, ${meta.matrices.length} matrices, layers ${meta.layers.join(", ")}` + (meta.reference
      ? `; probe: ${meta.reference.description}, input changed at step${meta.reference.changed.length === 1 ? "" : "s"} ${meta.reference.changed.join(", ") || "none"}; G' − G against ${meta.reference.of}`
      : "");
    buildStepView();
    if (!meta.matrices.length) {
      showMessage(`Missing data: ${FOLDER}/meta.js lists no matrices; there is nothing for the matrix view to show.`);
      $("matrix-view").append(el("div", { className: "note", textContent: "No matrices in meta.js." }));
    } else {
      buildMatrixView();
      const [first, second] = defaultMatrices();
      await Promise.all([selectMatrix(first), selectSecond(second)]);
      buildMotionView();
    }
    const score = loadScore();
    buildUnitView();
    selectStep(0);
    await score;
    window.addEventListener("resize", perFrame(onResize));
  }

  function onResize() {
    if (panelA) {
      const side = panelSide();
      panelA.resize(side);
      panelB.resize(side);
      drawPanels();
    }
    for (const trace of [stepTrace, unitTrace]) if (trace) trace.resize();
    drawStepTrace();
    drawUnitTrace();
    updateUnits(false);
  }

  api.ready = start().then(() => true, (error) => {
    showMessage(`The explorer could not start: ${error.message}.`);
    $("subtitle").textContent = "not loaded";
    return false;
  });
})();
