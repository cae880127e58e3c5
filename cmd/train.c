/* cfl train <job folder> --epochs N: the central baseline of a built-in job. */
#include "cmds.h"

#include "cfl/trainer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: cfl train <job folder> --epochs N\n\n"
	             "Trains the job's built-in model centrally on all the training data for N\n"
	             "epochs and prints its test accuracy: the baseline a federated run is\n"
	             "compared with.\n");
}

int cmd_train(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"epochs", required_argument, NULL, 'e'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct cfl_err e = {0};
	struct timespec t0, t1;
	float acc = 0;
	long v;
	int ch, epochs = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "e:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			if (cmd_parse_long("number of epochs", optarg, 1, 1000, &v) != 0) {
				usage(stderr);
				return EXIT_USAGE;
			}
			epochs = (int)v;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || epochs < 1 || epochs > 1000) {
		usage(stderr);
		return EXIT_USAGE;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (cfl_trainer_central_baseline(argv[optind], epochs, &acc, &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("central: %d epochs, test accuracy %.4f (%.1f s)\n", epochs, (double)acc,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return EXIT_OK;
}
