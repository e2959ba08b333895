"""Play with the grid: move theta with sliders and watch the grid generator and the sampler.

    python explore.py                      # the first MNIST test digit
    python explore.py my_digit.png         # your own image, made to look like MNIST
    python explore.py --rotation 30 --zoom-x 1.5 --zoom-y 1.5 --save turned.png
    python explore.py --theta=0.5,0,0.2,0,0.5,0 --save zoomed.png   # theta itself
    python explore.py --transform projective   # a homography: two more entries, a tilt
    python explore.py --transform tps          # a thin-plate spline: drag its points
    python explore.py --transform attention    # a square window: a scale and a shift

Left: the input, with a dot on every point the output reads (the sampling grid of the
transformer's grid generator in ``transformer.py``). Right: what
``transformer.bilinear_sampler`` reads there, the STN's output for that theta. The
sliders on the left say what theta does to the digit, as ``predict.py`` words it
(turn, zoom, shear, shift: the affine part); those on the right are theta's entries
(six, or eight for the projective, whose last two tilt the plane; an attention window
has three, its scale and shift, and keeps only the zoom and shift of the moves). A thin-plate
spline's 16 control points are drawn on the input: drag one to bend the grid. Moving
either set of sliders moves the other. Without a display, ``--save`` writes the figure
for the values given as flags.
"""
import argparse
import os
import sys

import numpy as np

from mnist_stn.compat import tf     # first: it quiets TensorFlow's C++ start-up log
import transformer  # noqa: I001
from mnist_stn import data, geometry, images
from mnist_stn.constants import IMAGE_SIZE

# What the digit-side sliders span: (flag, label, geometry.compose argument, min, max, start)
MOVES = (("rotation", "turn (° clockwise)", "angle", -180.0, 180.0, 0.0),
         ("zoom-x", "zoom across", "scale_x", 0.2, 4.0, 1.0),
         ("zoom-y", "zoom up/down", "scale_y", 0.2, 4.0, 1.0),
         ("shear", "shear (°)", "shear", -60.0, 60.0, 0.0),
         ("shift-x", "shift right (px)", "shift_x", -14.0, 14.0, 0.0),
         ("shift-y", "shift down (px)", "shift_y", -14.0, 14.0, 0.0))
THETA_RANGE = 2.0          # the raw sliders span [-2, 2] (the projective's tilt: a quarter)
GRID_STEP = 2              # a dot for every second output point in each direction
MAX_RAW_SLIDERS = 8        # theta's entries get sliders up to this many (a spline: drag)
GRIP = 2.0                 # px: how near a click must be to grab a control point
WINDOW_LABELS = ("scale s", "shift x", "shift y")   # an attention window's theta


class Explorer:
    """The figure: input with its sampling points, the output, and the sliders.

    ``sliders`` maps each MOVES flag and "theta 0" .. "theta 5" (to 7 for the
    projective) to its Slider; ``theta`` is the theta drawn now, (6,), (8,) or (32,).
    Build it with pyplot's backend already chosen.
    """

    def __init__(self, image, transform, theta=None):
        import matplotlib.pyplot as plt
        from matplotlib.widgets import Slider

        self.image = np.asarray(image, np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)
        self.transform = transform
        size = transformer.TRANSFORMS[transform].size
        self.raw_sliders = size if size <= MAX_RAW_SLIDERS else 0
        self.bend = np.zeros((transformer.TPS_GRID ** 2, 2))  # spline: beyond the affine
        self._build_graph()
        self.fig = plt.figure(figsize=(10, 7.5))
        self.input_ax = self.fig.add_axes([0.05, 0.45, 0.42, 0.5])
        self.output_ax = self.fig.add_axes([0.53, 0.45, 0.42, 0.5])
        self.input_ax.imshow(self.image, cmap="gray", vmin=0, vmax=1)
        self.points = self.input_ax.scatter([], [], s=4, c="#1f9bff")
        self.controls = self.input_ax.scatter([], [], s=36, c="#ff8c1a", zorder=3)
        self._dragged = None
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
        start = np.array(transformer.TRANSFORMS[transform].identity)
        for k in range(self.raw_sliders):
            ax = self.fig.add_axes([0.62, 0.36 - 0.042 * k, 0.28, 0.025])
            name = f"theta {k}"
            span = THETA_RANGE if k < 6 else THETA_RANGE / 4
            label = (WINDOW_LABELS[k] if transform == "attention"
                     else f"theta[{k // 3}, {k % 3}]")
            self.sliders[name] = Slider(ax, label, -span, span, valinit=start[k])
            self.sliders[name].on_changed(self._theta_moved)
        if transform == "tps":
            self.fig.text(0.55, 0.3, "drag the orange control points\non the input to bend "
                                     "the grid", fontsize=10)
            self.fig.canvas.mpl_connect("button_press_event", self._grab)
            self.fig.canvas.mpl_connect("motion_notify_event", self._drag)
            self.fig.canvas.mpl_connect("button_release_event", self._release)
        self.set_theta(start if theta is None else theta)   # default: the identity

    def _build_graph(self):
        self.graph = tf.Graph()
        with self.graph.as_default():
            kind = transformer.TRANSFORMS[self.transform]
            self._theta = tf.placeholder(tf.float32, [1, kind.size])
            image = tf.constant(self.image[None, :, :, None])
            # (1, P) -> (1, 2, 28, 28): the input point behind every output pixel, normalised
            grid = kind.grid(IMAGE_SIZE, IMAGE_SIZE, self._theta)
            x_s, y_s = tf.unstack(grid, axis=1)
            # (1, 28, 28, 1): the input read at those points
            self._nodes = {"grid": grid, "output": transformer.bilinear_sampler(image, x_s, y_s)}
        self.sess = tf.Session(graph=self.graph)

    def set_theta(self, theta):
        """Draw theta and move every slider to it."""
        self.theta = np.asarray(theta, np.float64).ravel()
        if self.transform == "tps":       # what the affine part leaves is the bend
            affine, _ = geometry.affine_part(self.theta[None], "tps")
            self.bend = (self.theta - spline_of(affine[0])).reshape(-1, 2)
        self._quietly(lambda: [self.sliders[f"theta {k}"].set_val(self.theta[k])
                               for k in range(self.raw_sliders)])
        parts = geometry.decompose(self.theta[None], IMAGE_SIZE, self.transform)
        if not parts["degenerate"][0]:
            values = {arg: float(parts[arg][0]) for _, _, arg, _, _, _ in MOVES}
            self._quietly(lambda: [self.sliders[flag].set_val(
                np.clip(values[arg], low, high)) for flag, _, arg, low, high, _ in MOVES])
        self._draw(parts)

    def _moved(self, _):
        values = {arg: self.sliders[flag].val for flag, _, arg, _, _, _ in MOVES}
        affine = geometry.compose(**values)
        if self.transform == "projective":
            self.theta = np.concatenate([affine, self.theta[6:]])
        elif self.transform == "tps":
            self.theta = spline_of(affine) + self.bend.ravel()
        elif self.transform == "attention":
            self.theta = window_of(affine)
        else:
            self.theta = affine
        self._quietly(lambda: [self.sliders[f"theta {k}"].set_val(self.theta[k])
                               for k in range(self.raw_sliders)])
        self._draw(geometry.decompose(self.theta[None], IMAGE_SIZE, self.transform))

    def _theta_moved(self, _):
        self.set_theta([self.sliders[f"theta {k}"].val
                        for k in range(self.raw_sliders)])

    def control_pixels(self):
        """The spline's control points where they read the input, (K, 2) pixels."""
        moved = geometry.tps_control_points() + self.theta.reshape(-1, 2)
        return (moved + 1.0) / 2.0 * (IMAGE_SIZE - 1)

    def _grab(self, event):
        if event.inaxes is not self.input_ax or event.xdata is None:
            return
        distance = np.hypot(*(self.control_pixels() - [event.xdata, event.ydata]).T)
        self._dragged = int(distance.argmin()) if distance.min() <= GRIP else None

    def _drag(self, event):
        if self._dragged is None or event.inaxes is not self.input_ax or event.xdata is None:
            return
        self.move_control(self._dragged, event.xdata, event.ydata)

    def _release(self, _):
        self._dragged = None

    def move_control(self, k, x, y):
        """Put control point k where it reads the input pixel (x, y): the grid bends."""
        theta = self.theta.reshape(-1, 2).copy()
        theta[k] = np.array([x, y]) / (IMAGE_SIZE - 1) * 2.0 - 1.0 \
            - geometry.tps_control_points()[k]
        self.set_theta(theta.ravel())

    def _quietly(self, change):
        """Move sliders without calling their callbacks (no ping-pong), and without a
        redraw of the whole figure for each one: ``_draw`` draws once after them."""
        for slider in self.sliders.values():
            slider.eventson = slider.drawon = False
        try:
            change()
        finally:
            for slider in self.sliders.values():
                slider.eventson = slider.drawon = True

    def _draw(self, parts):
        out = self.sess.run(self._nodes, {self._theta: self.theta[None].astype(np.float32)})
        # normalised [-1, 1] -> pixel indices, as the sampler reads them
        pixels = (out["grid"][0, :, ::GRID_STEP, ::GRID_STEP] + 1.0) / 2.0 * (IMAGE_SIZE - 1)
        self.points.set_offsets(np.stack([pixels[0].ravel(), pixels[1].ravel()], axis=1))
        if self.transform == "tps":
            self.controls.set_offsets(self.control_pixels())
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


def window_of(affine):
    """The attention window (3,) nearest the affine warp (6,): its mean zoom and its
    shift (a window cannot turn, shear or stretch one axis)."""
    a = np.asarray(affine, np.float64)
    return np.array([(a[0] + a[4]) / 2.0, a[2], a[5]])


def spline_of(affine):
    """The spline theta (32,) that moves every control point c to A c + t: the affine
    warp (6,) as a thin-plate spline."""
    control = geometry.tps_control_points()
    matrix = np.asarray(affine, np.float64).reshape(2, 3)
    return (control @ matrix[:, :2].T + matrix[:, 2] - control).ravel()


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
    parser.add_argument("--transform", choices=tuple(transformer.TRANSFORMS), default="affine",
                        help="the transformer: affine (the tutorial's), projective (two "
                             "more entries that tilt the plane), tps (a thin-plate "
                             "spline whose 16 control points can be dragged) or attention "
                             "(a square window: scale and shift) (default: %(default)s)")
    parser.add_argument("--theta", default=None,
                        help="theta's entries, comma-separated, instead of the moves "
                             "above: six, eight for the projective, 32 for the spline "
                             "(each control point's move), three for attention (s, x, y); write --theta=-1,0,0,0,1,0 when "
                             "it starts with a minus")
    parser.add_argument("--save", default=None, metavar="PNG",
                        help="write the figure to this file instead of opening a window")
    return parser


def parse_theta(parser, args):
    """The theta the flags ask for, for --transform; a bad value is one argparse error
    line."""
    size = transformer.TRANSFORMS[args.transform].size
    if args.theta is None:
        for flag, *_ in MOVES:
            value = getattr(args, flag.replace("-", "_"))
            if not np.isfinite(value):
                parser.error(f"--{flag} must be a finite number, not {value}")
        for flag in ("zoom-x", "zoom-y"):
            if getattr(args, flag.replace("-", "_")) == 0:
                parser.error(f"--{flag} must not be 0 (the digit would vanish)")
        affine = geometry.compose(**{arg: getattr(args, flag.replace("-", "_"))
                                     for flag, _, arg, _, _, _ in MOVES})
        if args.transform == "projective":
            return np.concatenate([affine, [0.0, 0.0]])
        if args.transform == "attention":
            return window_of(affine)
        return spline_of(affine) if args.transform == "tps" else affine
    try:
        theta = np.array([float(v) for v in args.theta.split(",")])
    except ValueError:
        theta = np.array([])
    if theta.shape != (size,) or not np.isfinite(theta).all():
        parser.error(f"--theta needs {size} comma-separated numbers for the "
                     f"{args.transform} transformer, not {args.theta!r}")
    return theta


def check_save_path(parser, path):
    """Refuse, before any work, a --save that matplotlib could not write."""
    import matplotlib.figure
    if os.path.isdir(path):
        parser.error(f"--save {path} is a folder; name a file in it, such as "
                     f"{os.path.join(path, 'grid.png')}")
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
    explorer = Explorer(digit, args.transform, theta)
    if args.save:
        explorer.fig.savefig(args.save, dpi=100)
        words = geometry.describe(geometry.decompose(theta[None], IMAGE_SIZE, args.transform),
                                  0)
        print(f"Wrote {args.save}: {words}")
    else:
        plt.show()
    explorer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
