// cmd_tokenizer.c: `kiln tokenizer SUBCOMMAND`. For now: encode-corpus with the
// byte-level tokenizer (vocabulary 256: one token per byte).
#include "cli.h"

#include "kiln/shard.h"

#include <stdlib.h>
#include <string.h>

// Concatenates files as bytes; the last val_fraction becomes the validation shard.
static int encode_corpus(int argc, char **argv) {
    const char *out = NULL;
    double val_fraction = 0.1;
    int bytes = 0, nfiles = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_error("out of memory");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (++i >= argc) return cli_error("%s needs a directory", argv[i - 1]);
            out = argv[i];
        } else if (!strcmp(argv[i], "--val-fraction")) {
            char *end;
            if (++i >= argc) return cli_error("--val-fraction needs a number");
            val_fraction = strtod(argv[i], &end);
            if (*end || val_fraction < 0 || val_fraction >= 1)
                return cli_error("--val-fraction must be in [0, 1), got '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--bytes")) {
            bytes = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_error("encode-corpus: unknown option '%s'", argv[i]);
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!bytes) return cli_error("encode-corpus: only --bytes is available until the BPE tokenizer lands");
    if (!out) return cli_error("encode-corpus: -o DIR is required");
    if (!nfiles) return cli_error("encode-corpus: no input files");
    KilnErr err;
    char *all = NULL;
    size_t total = 0;
    for (int i = 0; i < nfiles; i++) {
        char *data;
        size_t len;
        if (kiln_read_file(files[i], &data, &len, &err)) return cli_error("%s", err.msg);
        char *grown = realloc(all, total + len);
        if (!grown) return cli_error("out of memory");
        all = grown;
        memcpy(all + total, data, len);
        total += len;
        free(data);
    }
    if (total > INT32_MAX) return cli_error("input is %zu bytes; byte shards hold at most 2^31", total);
    uint32_t *tok = malloc(sizeof(uint32_t) * (total ? total : 1));
    if (!tok) return cli_error("out of memory");
    for (size_t i = 0; i < total; i++) tok[i] = (uint8_t)all[i];
    free(all);
    long nval = (long)(total * val_fraction), ntrain = (long)total - nval;
    if (kiln_mkdirs(out, &err)) return cli_error("%s", err.msg);
    char path[2048];
    snprintf(path, sizeof path, "%s/train_000000.bin", out);
    if (shard_write(path, tok, ntrain, 256, &err)) return cli_error("%s", err.msg);
    printf("wrote %s (%ld tokens)\n", path, ntrain);
    if (nval > 0) {
        snprintf(path, sizeof path, "%s/val_000000.bin", out);
        if (shard_write(path, tok + ntrain, nval, 256, &err)) return cli_error("%s", err.msg);
        printf("wrote %s (%ld tokens)\n", path, nval);
    }
    free(tok);
    free(files);
    return 0;
}

static const char USAGE[] =
    "usage: kiln tokenizer encode-corpus --bytes -o DIR [--val-fraction F] FILE...\n"
    "\n"
    "encode-corpus  turns text files into token shards (llm.c .bin layout):\n"
    "               DIR/train_000000.bin and DIR/val_000000.bin (the last F of the\n"
    "               input, default 0.1). --bytes: one token per byte (vocabulary 256).\n";

static int run(int argc, char **argv) {
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 1;
    }
    if (!strcmp(argv[1], "encode-corpus")) return encode_corpus(argc - 1, argv + 1);
    return cli_error("tokenizer: unknown subcommand '%s' (see `kiln tokenizer --help`)", argv[1]);
}

const KilnCommand CMD_TOKENIZER = {"tokenizer", run, "token shards from text (byte-level for now)", USAGE};
