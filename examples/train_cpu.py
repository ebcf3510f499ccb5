"""Chapter 1 of *Neural Networks and Deep Learning*, on the CPU with NumPy.

    python examples/train_cpu.py --data-dir ../shared/data/mnist

Same session as the book: load the data, build a [784, 30, 10] network, run
SGD for 30 epochs with mini-batches of 10 and eta = 3.0.
"""

import argparse

from _outputs import check_data_dir

import portable_nn

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--data-dir", default=None, help="directory of the MNIST IDX files")
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--seed", type=int, default=None, help="fix the initial weights and shuffles")
args = parser.parse_args()
check_data_dir(args.data_dir)  # before any work: a missing directory is never created

training_data, validation_data, test_data = portable_nn.load_data_wrapper(args.data_dir)
net = portable_nn.Network([784, 30, 10], xp="numpy", seed=args.seed)
net.SGD(training_data, args.epochs, 10, 3.0, test_data=test_data)
