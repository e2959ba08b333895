"""Numbers that define MNIST and the tutorial; defined once, imported everywhere."""
IMAGE_SIZE = 28                       # MNIST digits are 28x28 pixels, one channel
NUM_CHANNELS = 1
IMAGE_PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 784: the flat input of the TF1 tutorials
NUM_CLASSES = 10
PIXEL_SCALE = 255.0                   # uint8 pixels are divided by this to land in [0, 1]
TRAIN_FILE_SIZE = 60000               # images in MNIST's training file ...
VALIDATION_SIZE = 5000                # ... of which these are held out, as input_data did

# What a run's [model] may choose beyond numbers (mnist_stn/configs.py checks recipes
# against these; the graphs read them)
LOC_HEADS = ("tutorial", "identity")     # how the MNIST loc net's last layer starts
BN_ORDERS = ("after-relu", "before-relu")  # the letters' batch norm: after the ReLU (seed's)
NORMS = ("renorm", "plain")  # the letters' seed's BatchNormalization(renorm=True), or plain
PIXEL_RANGES = ("0,1", "-1,1")           # the letters' model rescales its input to one
CLASSIFIERS = ("cnn", "fcn")           # what follows the STN: the TF1 CNN, or fully connected
SUM_CLASSES = 19                       # the MNIST addition's targets: sums 0 to 18
