"""Numbers that define MNIST and the tutorial; defined once, imported everywhere."""
import string

IMAGE_SIZE = 28                       # MNIST digits are 28x28 pixels, one channel
NUM_CHANNELS = 1
IMAGE_PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 784: the flat input of the TF1 tutorials
NUM_CLASSES = 10
PIXEL_SCALE = 255.0                   # uint8 pixels are divided by this to land in [0, 1]
VALIDATION_SIZE = 5000                # held out of the 60,000 training images, as input_data did

# The second tutorial's data: single captcha letters A-Z, RGB, drawn on 60x60.
CAPTCHA_SIZE = 60
CAPTCHA_CHANNELS = 3
LETTERS = string.ascii_uppercase      # class k is the letter LETTERS[k]
NUM_LETTERS = len(LETTERS)
