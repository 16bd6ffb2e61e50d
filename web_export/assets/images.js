// Shared by widgets: a photo as tinkerflow's Python side prepares it (EXIF orientation
// applied by createImageBitmap, white behind transparency, the centre square, a smooth
// resize), and a portable random generator that Python reproduces exactly.

// Draws `source` (width x height) into `canvas` as a size x size square; returns RGB floats 0..255.
export function prepareImage(source, width, height, size, canvas) {
  canvas.width = canvas.height = size;
  const draw = canvas.getContext("2d", { willReadFrequently: true });
  const side = Math.min(width, height);
  draw.fillStyle = "#ffffff";
  draw.fillRect(0, 0, size, size);
  draw.imageSmoothingEnabled = true;
  draw.imageSmoothingQuality = "high";
  draw.drawImage(source, Math.floor((width - side) / 2), Math.floor((height - side) / 2), side, side, 0, 0, size, size);
  return rgbOf(draw.getImageData(0, 0, size, size).data);
}

export function rgbOf(rgba) {
  const rgb = new Float32Array((rgba.length / 4) * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4) {
    rgb[j++] = rgba[i];
    rgb[j++] = rgba[i + 1];
    rgb[j++] = rgba[i + 2];
  }
  return rgb;
}

// Paints RGB values 0..255 (rounded, clipped) of a size x size image into `canvas`.
export function paintRGB(pixels, size, canvas) {
  canvas.width = canvas.height = size;
  const draw = canvas.getContext("2d");
  const image = draw.createImageData(size, size);
  for (let p = 0; p < size * size; p++) {
    for (let c = 0; c < 3; c++) image.data[4 * p + c] = Math.min(255, Math.max(0, Math.round(pixels[3 * p + c])));
    image.data[4 * p + 3] = 255;
  }
  draw.putImageData(image, 0, 0);
}

// mulberry32 uniforms and Box-Muller normals: tinkerflow.plugins.captioning.telephone.portable_normal.
export function portableNormal(seed, count) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a) >>> 0;
    t = ((t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t) >>> 0;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u1 = 1 - uniform();
    const u2 = uniform();
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}
