"""Chapter 1 of the book on a CUDA GPU with CuPy, in float32.

    python examples/train_gpu.py --data-dir ../shared/data/mnist

Prints the GPU, then each epoch's training time and test accuracy.  On a
machine without a usable CUDA device it exits with a message saying why.
"""

import argparse
import sys

from _outputs import check_data_dir

import portable_nn

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--data-dir", default=None, help="directory of the MNIST IDX files")
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--batch-size", type=int, default=10)
args = parser.parse_args()
check_data_dir(args.data_dir)  # before any work: a missing directory is never created

try:
    net = portable_nn.Network([784, 30, 10], xp="cupy", dtype="float32", seed=0)
except portable_nn.BackendUnavailableError as exc:
    sys.exit(f"train_gpu.py needs a CUDA GPU with CuPy: {exc}")
print(f"device: {net.backend.describe()}")

# MNIST stays uint8 on the GPU (39 MB for the training set); each mini-batch is
# scaled by 1/255 as it is taken, bit for bit what scaling up front would give.
(train_x, train_y), (test_x, test_y) = portable_nn.load_mnist(args.data_dir, dtype="uint8")
training_data = portable_nn.Dataset(train_x[:50_000], train_y[:50_000], divisor=255.0)
test_data = portable_nn.Dataset(test_x, test_y, divisor=255.0)


def report(epoch):
    print(
        f"epoch {epoch.epoch + 1}: {epoch.correct} / {epoch.n_test} ({100 * epoch.accuracy:.2f}%) {epoch.seconds:.2f} s"
    )


net.SGD(training_data, args.epochs, args.batch_size, 3.0, test_data=test_data, quiet=True, on_epoch=report)
