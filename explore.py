"""Play with the grid: move theta with sliders and watch the grid generator and the sampler.

    python explore.py                      # the first MNIST test digit
    python explore.py my_digit.png         # your own image, made to look like MNIST
    python explore.py --rotation 30 --zoom-x 1.5 --zoom-y 1.5 --save turned.png
    python explore.py --theta=0.5,0,0.2,0,0.5,0 --save zoomed.png   # theta itself

Left: the input, with a dot on every point the output reads (the sampling grid of
``transformer.affine_grid_generator``). Right: what ``transformer.bilinear_sampler``
reads there, the STN's output for that theta. The sliders on the left say what theta
does to the digit, as ``predict.py`` words it (turn, zoom, shear, shift); those on the
right are theta's six entries. Moving either set moves the other. Without a display,
``--save`` writes the figure for the values given as flags.
"""
import argparse
import os
import sys

import numpy as np

import transformer
from mnist_stn import data, geometry, images
from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_SIZE

# What the digit-side sliders span: (flag, label, geometry.compose argument, min, max, start)
MOVES = (("rotation", "turn (° clockwise)", "angle", -180.0, 180.0, 0.0),
         ("zoom-x", "zoom across", "scale_x", 0.2, 4.0, 1.0),
         ("zoom-y", "zoom up/down", "scale_y", 0.2, 4.0, 1.0),
         ("shear", "shear (°)", "shear", -60.0, 60.0, 0.0),
         ("shift-x", "shift right (px)", "shift_x", -14.0, 14.0, 0.0),
         ("shift-y", "shift down (px)", "shift_y", -14.0, 14.0, 0.0))
THETA_RANGE = 2.0          # the raw sliders span [-2, 2]
GRID_STEP = 2              # a dot for every second output point in each direction


class Explorer:
    """The figure: input with its sampling points, the output, and the sliders.

    ``sliders`` maps each MOVES flag and "theta 0" .. "theta 5" to its Slider; ``theta``
    is the (6,) theta drawn now. Build it with pyplot's backend already chosen.
    """

    def __init__(self, image, theta=transformer.IDENTITY_THETA):
        import matplotlib.pyplot as plt
        from matplotlib.widgets import Slider

        self.image = np.asarray(image, np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)
        self._build_graph()
        self.fig = plt.figure(figsize=(10, 7.5))
        self.input_ax = self.fig.add_axes([0.05, 0.45, 0.42, 0.5])
        self.output_ax = self.fig.add_axes([0.53, 0.45, 0.42, 0.5])
        self.input_ax.imshow(self.image, cmap="gray", vmin=0, vmax=1)
        self.points = self.input_ax.scatter([], [], s=4, c="#1f9bff")
        # sampling points may leave the image: keep the view on the image
        self.input_ax.set_xlim(-0.5, IMAGE_SIZE - 0.5)
        self.input_ax.set_ylim(IMAGE_SIZE - 0.5, -0.5)
        self.input_ax.set_title("input and the points the output reads")
        self.output_image = self.output_ax.imshow(np.zeros_like(self.image), cmap="gray",
                                                  vmin=0, vmax=1)
        for ax in (self.input_ax, self.output_ax):
            ax.set_xticks([])
            ax.set_yticks([])

        self.sliders = {}
        for row, (flag, label, _, low, high, start) in enumerate(MOVES):
            ax = self.fig.add_axes([0.17, 0.36 - 0.055 * row, 0.28, 0.03])
            self.sliders[flag] = Slider(ax, label, low, high, valinit=start)
            self.sliders[flag].on_changed(self._moved)
        for k in range(6):
            ax = self.fig.add_axes([0.62, 0.36 - 0.055 * k, 0.28, 0.03])
            name = f"theta {k}"
            self.sliders[name] = Slider(ax, f"theta[{k // 3}, {k % 3}]", -THETA_RANGE,
                                        THETA_RANGE, valinit=transformer.IDENTITY_THETA[k])
            self.sliders[name].on_changed(self._theta_moved)
        self.set_theta(theta)

    def _build_graph(self):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._theta = tf.placeholder(tf.float32, [1, 6])
            image = tf.constant(self.image[None, :, :, None])
            # (1, 2, 28, 28): the input point behind every output pixel, normalised
            grid = transformer.affine_grid_generator(IMAGE_SIZE, IMAGE_SIZE,
                                                     tf.reshape(self._theta, [1, 2, 3]))
            x_s, y_s = tf.unstack(grid, axis=1)
            # (1, 28, 28, 1): the input read at those points
            self._nodes = {"grid": grid, "output": transformer.bilinear_sampler(image, x_s, y_s)}
        self.sess = tf.Session(graph=self.graph)

    def set_theta(self, theta):
        """Draw theta (6,) and move every slider to it."""
        self.theta = np.asarray(theta, np.float64).reshape(6)
        self._quietly(lambda: [self.sliders[f"theta {k}"].set_val(v)
                               for k, v in enumerate(self.theta)])
        parts = geometry.decompose(self.theta[None], IMAGE_SIZE)
        if not parts["degenerate"][0]:
            values = {arg: float(parts[arg][0]) for _, _, arg, _, _, _ in MOVES}
            self._quietly(lambda: [self.sliders[flag].set_val(
                np.clip(values[arg], low, high)) for flag, _, arg, low, high, _ in MOVES])
        self._draw(parts)

    def _moved(self, _):
        values = {arg: self.sliders[flag].val for flag, _, arg, _, _, _ in MOVES}
        self.theta = geometry.compose(**values)
        self._quietly(lambda: [self.sliders[f"theta {k}"].set_val(v)
                               for k, v in enumerate(self.theta)])
        self._draw(geometry.decompose(self.theta[None], IMAGE_SIZE))

    def _theta_moved(self, _):
        self.set_theta([self.sliders[f"theta {k}"].val for k in range(6)])

    def _quietly(self, change):
        """Move sliders without calling their callbacks (no ping-pong)."""
        for slider in self.sliders.values():
            slider.eventson = False
        try:
            change()
        finally:
            for slider in self.sliders.values():
                slider.eventson = True

    def _draw(self, parts):
        out = self.sess.run(self._nodes, {self._theta: self.theta[None].astype(np.float32)})
        # normalised [-1, 1] -> pixel indices, as the sampler reads them
        pixels = (out["grid"][0, :, ::GRID_STEP, ::GRID_STEP] + 1.0) / 2.0 * (IMAGE_SIZE - 1)
        self.points.set_offsets(np.stack([pixels[0].ravel(), pixels[1].ravel()], axis=1))
        self.output_image.set_data(np.clip(out["output"][0, :, :, 0], 0, 1))
        words = geometry.describe(parts, 0)
        self.output_ax.set_title("output: " + words if len(words) < 50 else
                                 "output:\n" + words, fontsize=9 if len(words) >= 50 else 10)
        self.fig.canvas.draw_idle()

    def output(self):
        """The output image as drawn now, (28, 28)."""
        return np.asarray(self.output_image.get_array())

    def close(self):
        self.sess.close()


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", nargs="?", metavar="IMAGE",
                        help="an image file of a digit (PNG, JPEG, GIF, BMP or WebP), made to "
                             "look like MNIST as predict.py does (default: a test digit)")
    parser.add_argument("--index", type=int, default=0,
                        help="which MNIST test digit, without IMAGE (default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the MNIST IDX files (default: as train.py)")
    for flag, label, _, low, high, start in MOVES:
        parser.add_argument(f"--{flag}", type=float, default=start,
                            help=f"{label}, {low:g} to {high:g} on the slider "
                                 "(default: %(default)s)")
    parser.add_argument("--theta", default=None,
                        help="theta's six entries, comma-separated, instead of the moves "
                             "above; write --theta=-1,0,0,0,1,0 when it starts with a minus")
    parser.add_argument("--save", default=None, metavar="PNG",
                        help="write the figure to this file instead of opening a window")
    return parser


def parse_theta(parser, args):
    """The theta (6,) the flags ask for; a bad value is one argparse error line."""
    if args.theta is None:
        for flag, *_ in MOVES:
            value = getattr(args, flag.replace("-", "_"))
            if not np.isfinite(value):
                parser.error(f"--{flag} must be a finite number, not {value}")
        for flag in ("zoom-x", "zoom-y"):
            if getattr(args, flag.replace("-", "_")) == 0:
                parser.error(f"--{flag} must not be 0 (the digit would vanish)")
        return geometry.compose(**{arg: getattr(args, flag.replace("-", "_"))
                                   for flag, _, arg, _, _, _ in MOVES})
    try:
        theta = np.array([float(v) for v in args.theta.split(",")])
    except ValueError:
        theta = np.array([])
    if theta.shape != (6,) or not np.isfinite(theta).all():
        parser.error(f"--theta needs six comma-separated numbers, not {args.theta!r}")
    return theta


def check_save_path(parser, path):
    """Refuse, before any work, a --save that matplotlib could not write."""
    import matplotlib.figure
    formats = matplotlib.figure.Figure().canvas.get_supported_filetypes()
    extension = os.path.splitext(path)[1].lstrip(".").lower()
    if extension not in formats:
        parser.error(f"--save {path}: name a file ending in one of "
                     f"{', '.join('.' + name for name in sorted(formats))}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        parser.error(f"--save {path}: there is no folder {folder}")


def load_digit(args):
    """(28, 28) in [0, 1]: the user's image made MNIST-like, or a test digit."""
    if args.image:
        return images.prepare(args.image)
    test = data.load_mnist(args.data_dir, validation_size=0).test
    if not 0 <= args.index < len(test.images):
        raise data.DataError(f"--index must be in 0..{len(test.images) - 1}")
    return test.images[args.index].reshape(IMAGE_SIZE, IMAGE_SIZE)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    theta = parse_theta(parser, args)
    if args.save:
        check_save_path(parser, args.save)
    import matplotlib
    if args.save:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not args.save and plt.get_backend().lower() == "agg":
        print("error: no display to open a window on; pass --save out.png to write "
              "the figure instead", file=sys.stderr)
        return 1
    try:
        digit = load_digit(args)
    except (data.DataError, images.ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    explorer = Explorer(digit, theta)
    if args.save:
        explorer.fig.savefig(args.save, dpi=100)
        words = geometry.describe(geometry.decompose(theta[None], IMAGE_SIZE), 0)
        print(f"Wrote {args.save}: {words}")
    else:
        plt.show()
    explorer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
