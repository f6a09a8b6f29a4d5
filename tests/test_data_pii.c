// test_data_pii: the pii stage. True positives and near misses at the edge of
// each pattern (e-mail, IPv4 public/private ranges at their boundaries, IPv6,
// phone shapes vs dates and version numbers), datatrove's own IPv4 test lists,
// and false positives counted on real number-heavy text (GSM8K, Linux source).
#include "kiln/data.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

extern const KilnStageDef STAGE_PII;
static char data_dir[4096];

#define make(...) test_stage_make(&STAGE_PII, 1, __VA_ARGS__)

// The text after the stage (malloc'd); the document must be kept.
static char *run(void *st, const char *text, size_t len) {
    char *out;
    assert_null(test_apply(&STAGE_PII, st, NULL, NULL, text, len, &out, NULL));
    return out;
}

static void check(void *st, const char *in, const char *want) {
    char *got = run(st, in, strlen(in));
    if (strcmp(got, want)) fail_msg("pii(\"%s\") = \"%s\", want \"%s\"", in, got, want);
    free(got);
}

static void same(void *st, const char *in) { check(st, in, in); }

static void test_email(void **u) {
    void *st = make(NULL);
    check(st, "Contact john.doe@example.com now", "Contact <EMAIL> now");
    check(st, "JOHN.DOE@EXAMPLE.COM", "<EMAIL>");  // datatrove's regex is lowercase only
    check(st, "a+tag@sub.example.co.uk.", "<EMAIL>.");
    check(st, "o'brien_{x}@mail-1.example.org", "<EMAIL>");
    check(st, "root@[8.8.8.8] and x@y.io", "<EMAIL> and <EMAIL>");
    check(st, "<mailto:x_y@foo-bar.org>", "<mailto:<EMAIL>>");
    same(st, "john@localhost");      // no dot in the domain
    same(st, "@handle and john@");   // no local part / no domain
    same(st, "john@-foo.com x@foo-");  // labels neither start nor end with '-'
    same(st, "logo@2x.png icon@3x.JPG");  // file names
    same(st, "user@[999.1.1.1] popper.js@1.16.1/dist");  // the last label (TLD) starts with a letter
    check(st, "string = 'example@gmail.com'", "string = '<EMAIL>'");  // quotes are not part of it
    STAGE_PII.destroy(st);
}

static void test_ipv4(void **u) {
    void *st = make(NULL);
    check(st, "server 8.8.8.8 replied", "server <IP> replied");
    check(st, "see 1.1.1.1.", "see <IP>.");
    // the boundaries of the non-public ranges: inside unchanged, just outside replaced
    const char *kept[] = {"0.1.2.3",       "10.255.255.254",  "100.64.0.1",   "100.127.255.255", "127.0.0.2",
                          "169.254.1.1",   "172.16.0.9",      "172.31.254.254", "192.0.0.8",     "192.0.2.5",
                          "192.168.254.0", "198.18.0.1",      "198.19.255.255", "198.51.100.7",  "203.0.113.9",
                          "224.0.0.1",     "239.255.255.255", "240.0.0.1",    "255.255.255.255", NULL};
    const char *public[] = {"11.0.0.1",    "100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.1",
                            "169.253.1.1", "172.15.255.255", "172.32.0.1",  "192.0.3.1",       "192.169.0.1",
                            "198.17.255.255", "198.20.0.0",  "223.255.255.255", NULL};
    for (int i = 0; kept[i]; i++) same(st, kept[i]);
    for (int i = 0; public[i]; i++) check(st, public[i], "<IP>");
    // datatrove's test lists: invalid, local, valid
    same(st, "999.999.999.999. 108.0.0.01 0.1.2.3 00.0000.00.00 192.168.l.1 912.456.123.123 .3.3.3.0 192.168.o.0");
    same(st, "172.16.0.9 172.17.1.1 127.0.0.2 10.0.1.5 10.155.155.155 172.16.0.4 192.168.1.2 192.168.254.0");
    check(st, "163.36.107.25 114.35.103.54 57.120.21.121 13.83.69.70 4.132.211.142 214.70.227.4",
          "<IP> <IP> <IP> <IP> <IP> <IP>");
    // version numbers
    same(st, "1.2.3.4.5 v1.2.3.4 10.2.3.4.1");
    same(st, "version 8.8.8.8, Version: 8.8.8.8, release 1.2.3.4, POSIX 3.3.1.3, section 4.4.2.1");
    STAGE_PII.destroy(st);
    st = make("only_public_ips", "false", "ip", "[ip]", NULL);
    check(st, "192.168.1.2 and 8.8.8.8", "[ip] and [ip]");
    same(st, "256.1.1.1 1.2.3");
    STAGE_PII.destroy(st);
}

static void test_ipv6(void **u) {
    void *st = make(NULL);
    check(st, "dns 2001:4860:4860::8888, web 2a00:1450:4001:82a::200e.", "dns <IP>, web <IP>.");
    check(st, "2607:f8b0:4005:0805:0000:0000:0000:200e", "<IP>");
    check(st, "2001:4860::/32", "<IP>/32");
    same(st, "::1 fe80::1 2001:db8::1 fd00::1 ff02::1 2001:0:4136:e378::1");  // not global unicast
    same(st, "12:30:45 std::vector 00:1a:2b:3c:4d:5e dead:beef::1");
    same(st, "2001:4860:4860::8888::1 2001:4860:4860:0:0:0:0:0:8888");  // not addresses
    STAGE_PII.destroy(st);
}

static void test_phone(void **u) {
    void *st = make(NULL);
    const char *phones[] = {"+1 415 555 2671", "+44 20 7946 0958", "+44 (0)20 7946 0958", "+33 1 23 45 67 89",
                            "+14155552671",    "(415) 555-2671",   "415-555-2671",        "415.555.2671",
                            "1-800-555-0199",  "020 7946 0958",    "06 12 34 56 78",      "(020) 7946 0958",
                            NULL};
    for (int i = 0; phones[i]; i++) {
        char in[64];
        snprintf(in, sizeof in, "Call %s today.", phones[i]);
        check(st, in, "Call <PHONE> today.");
    }
    // dates, times, versions, numbers, ISBNs: untouched
    same(st, "on 2024-01-15, 15.01.2024, 01.02.2024 10:30 and 01/15/2024");
    same(st, "12345 3.14159265 +1 2 3 +12 345 1,234,567 0.5 0.25");
    same(st, "ISBN 978-0-306-40615-7, 415-555-26710, 123-456-7890, 415-055-2671");
    same(st, "Call 555-1234 or 5551234567");  // shapes we do not claim: local 7 digits, bare digit runs
    same(st, "+1234567890123456789");           // longer than E.164
    same(st, "01 02 2024 and 01.02.20.24");      // too few digits for a national number
    STAGE_PII.destroy(st);
}

static void test_switches(void **u) {
    const char *t = "mail a@b.example, ip 8.8.8.8, tel +1 415 555 2671";
    void *st = make("emails", "false", NULL);
    check(st, t, "mail a@b.example, ip <IP>, tel <PHONE>");
    STAGE_PII.destroy(st);
    st = make("ips", "false", "phones", "false", "email", "[email]", NULL);
    check(st, t, "mail [email], ip 8.8.8.8, tel +1 415 555 2671");
    STAGE_PII.destroy(st);
    st = make(NULL);
    check(st, t, "mail <EMAIL>, ip <IP>, tel <PHONE>");
    char *rep = STAGE_PII.report_json(st);
    assert_string_equal(rep, "{\"emails\":1,\"ipv4\":1,\"ipv6\":0,\"phones\":1,\"regex_errors\":0}");
    free(rep);
    STAGE_PII.destroy(st);
}

// Real text: counts what each pattern finds; GSM8K (numbers everywhere, no PII)
// and kernel source must give no phones or IPs.
static void count_file(void *st, const char *rel, long *changed_lines, double *mbps) {
    char path[4200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/%s", data_dir, rel);
    if (kiln_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    *changed_lines = 0;
    double t0 = kiln_now();
    for (size_t p = 0; p < len;) {
        const char *nl = memchr(data + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - data) + 1 : len;
        char *out = run(st, data + p, e - p);
        if (strlen(out) != e - p || memcmp(out, data + p, e - p)) {
            if (*changed_lines < 3) print_message("  %s: %.160s", rel, out);
            (*changed_lines)++;
        }
        free(out);
        p = e;
    }
    *mbps = len / 1e6 / (kiln_now() - t0);
    free(data);
}

static void test_real_text(void **u) {
    void *st = make(NULL), *no_mail = make("emails", "false", NULL);
    long changed;
    double mbps;
    // number-heavy text without PII: untouched
    count_file(st, "eval/gsm8k/train.jsonl", &changed, &mbps);
    print_message("gsm8k train: %ld lines changed, %.1f MB/s\n", changed, mbps);
    assert_int_equal(changed, 0);
    count_file(st, "pretrain/wikitext-2-raw/wiki.test.raw", &changed, &mbps);
    print_message("wikitext raw: %ld lines changed, %.1f MB/s\n", changed, mbps);
    assert_int_equal(changed, 0);
    // kernel source: the authors' addresses in the headers, and nothing else
    // (version and section numbers such as "POSIX 3.3.1.3" stay)
    count_file(st, "pretrain/code/linux-kernel.txt", &changed, &mbps);
    print_message("linux kernel: %ld lines changed, %.1f MB/s\n", changed, mbps);
    assert_true(changed >= 100);
    count_file(no_mail, "pretrain/code/linux-kernel.txt", &changed, &mbps);
    assert_int_equal(changed, 0);
    // tweets: the spam phone numbers (and e-mail addresses) are found
    count_file(st, "toxicity/davidson-hate-offensive/labeled_data.csv", &changed, &mbps);
    char *rep = STAGE_PII.report_json(st);
    print_message("davidson tweets: %ld lines changed; totals %s\n", changed, rep);
    assert_true(changed >= 20);
    free(rep);
    STAGE_PII.destroy(st);
    STAGE_PII.destroy(no_mail);
}

static int fuzz_pii(const char *path, void *st) {
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) return -1;
    free(run(st, data, len));
    free(data);
    return 0;
}

static void test_fuzz(void **u) {
    const char *seed = "mail john.doe@example.com or root@[8.8.8.8]; 8.8.8.8 2001:4860::8888 +44 (0)20 7946 0958 "
                       "(415) 555-2671 020 7946 0958 version 1.2.3.4";
    void *st = make(NULL);
    assert_int_equal(fuzz_mutants(seed, strlen(seed), 40, tmp("mutant"), 3000, 3, fuzz_pii, st), 0);
    STAGE_PII.destroy(st);
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, NULL, data_dir, sizeof data_dir, "eval/gsm8k/train.jsonl", NULL)) return TEST_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),  cmocka_unit_test(test_ipv4),      cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_phone),  cmocka_unit_test(test_switches),  cmocka_unit_test(test_real_text),
        cmocka_unit_test(test_fuzz),
    };
    return TEST_RUN("pii", tests);
}
