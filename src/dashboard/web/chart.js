// A small time-series chart on a canvas: the last `seconds` of one or more series, a
// y-axis from zero to a round maximum, and the time axis in seconds ago. Written here
// rather than taken from npm because this is all the dashboard draws: two charts of a
// few hundred points, redrawn once a second.

const NICE = [1, 2, 2.5, 5, 10];

// The smallest "round" number (1, 2, 2.5 or 5 times a power of ten) at or above `v`.
export function niceCeiling(v) {
    if (!(v > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(v));
    for (const n of NICE) {
        if (n * power >= v) return n * power;
    }
    return 10 * power;
}

// 1234 -> "1.2k", 2500000 -> "2.5M": short enough for an axis.
export function compact(v) {
    const abs = Math.abs(v);
    if (abs >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
    if (abs >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
    if (abs >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
    return `${+v.toFixed(1)}`;
}

export class TimeChart {
    // series: [{key, color: CSS variable name}]
    constructor(canvas, series, { seconds = 120 } = {}) {
        this.canvas = canvas;
        this.series = series;
        this.seconds = seconds;
        this.points = []; // {t: ms, values: {key: number}}
        new ResizeObserver(() => this.draw()).observe(canvas);
        matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw());
    }

    add(t, values) {
        this.points.push({ t, values });
        const horizon = t - this.seconds * 1000 - 2000;
        while (this.points.length > 0 && this.points[0].t < horizon) this.points.shift();
        this.draw();
    }

    draw() {
        const canvas = this.canvas;
        const ratio = window.devicePixelRatio || 1;
        const width = canvas.clientWidth;
        const height = canvas.clientHeight;
        if (width === 0 || height === 0) return;
        if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
            canvas.width = Math.round(width * ratio);
            canvas.height = Math.round(height * ratio);
        }
        const g = canvas.getContext('2d');
        g.setTransform(ratio, 0, 0, ratio, 0, 0);
        g.clearRect(0, 0, width, height);

        const style = getComputedStyle(canvas);
        const color = (name) => style.getPropertyValue(name).trim() || '#888';
        const font = `11px ${style.fontFamily}`;
        const left = 44;
        const right = 8;
        const top = 8;
        const bottom = 18;
        const plotW = width - left - right;
        const plotH = height - top - bottom;

        const now = this.points.length ? this.points[this.points.length - 1].t : Date.now();
        let max = 0;
        for (const p of this.points) {
            for (const s of this.series) max = Math.max(max, p.values[s.key] || 0);
        }
        // Four grid steps of a round size.
        max = 4 * niceCeiling(max / 4);

        // Grid and axes.
        g.font = font;
        g.fillStyle = color('--muted');
        g.strokeStyle = color('--grid');
        g.lineWidth = 1;
        g.textBaseline = 'middle';
        g.textAlign = 'right';
        for (let i = 0; i <= 4; i += 1) {
            const y = Math.round(top + plotH - (plotH * i) / 4) + 0.5;
            g.beginPath();
            g.moveTo(left, y);
            g.lineTo(left + plotW, y);
            g.stroke();
            g.fillText(compact((max * i) / 4), left - 6, y);
        }
        g.textAlign = 'center';
        g.textBaseline = 'top';
        for (let s = 0; s <= this.seconds; s += 30) {
            const x = left + plotW - (plotW * s) / this.seconds;
            g.fillText(s === 0 ? 'now' : `-${s}s`, Math.min(Math.max(x, left + 12), left + plotW - 12), top + plotH + 4);
        }

        // The series, oldest to newest.
        const xOf = (t) => left + plotW - (plotW * (now - t)) / (this.seconds * 1000);
        const yOf = (v) => top + plotH - (plotH * v) / max;
        g.save();
        g.beginPath();
        g.rect(left, top - 1, plotW, plotH + 2);
        g.clip();
        for (const s of this.series) {
            g.strokeStyle = color(s.color);
            g.lineWidth = 1.75;
            g.lineJoin = 'round';
            g.beginPath();
            let started = false;
            for (const p of this.points) {
                const v = p.values[s.key];
                if (typeof v !== 'number') {
                    started = false;
                    continue;
                }
                const x = xOf(p.t);
                const y = yOf(v);
                if (started) g.lineTo(x, y);
                else g.moveTo(x, y);
                started = true;
            }
            g.stroke();
        }
        g.restore();
    }
}
