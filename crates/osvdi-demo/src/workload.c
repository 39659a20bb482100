/* osvdi-workload: the scripted screen workload of `osvdi bench display`, run inside the demo
 * guest from its serial shell. Freestanding (raw Linux system calls, no libc), so any gcc
 * builds it static: cc -static -nostdlib -ffreestanding -fno-stack-protector -O2.
 *
 * Phases, each announced on standard output (the serial port) as "OSVDI-PHASE <name>", and
 * each ending in a still moment announced as "OSVDI-HOLD <name>": typing into the terminal
 * (tty1) at 8 characters a second, scrolling text at 30 lines a second, a window panned across
 * the framebuffer (/dev/fb0) at 30 frames a second (three strokes, each followed by a 2.5 s
 * hold: QEMU refreshes its JPEG areas losslessly after 2 s still),
 * and idle. Every change to the screen is followed by a line "E" (the bench takes the time of
 * changes from these). The content is the same on every run; only the timing follows the
 * clock. The screen is cleared at the end and "OSVDI-DONE" printed. */

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned char u8;

static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f)
{
    i64 ret;
    register i64 r10 __asm__("r10") = d;
    register i64 r8 __asm__("r8") = e;
    register i64 r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define sys3(n, a, b, c) sys6(n, (i64)(a), (i64)(b), (i64)(c), 0, 0, 0)

enum { SYS_WRITE = 1, SYS_OPEN = 2, SYS_MMAP = 9, SYS_IOCTL = 16, SYS_EXIT = 60,
       SYS_CLOCK_GETTIME = 228, SYS_CLOCK_NANOSLEEP = 230 };

struct timespec { i64 sec, nsec; };

static u64 strlen_(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
static void out(int fd, const char *s) { sys3(SYS_WRITE, fd, s, strlen_(s)); }
static void die(const char *why)
{
    out(1, "OSVDI-ERROR ");
    out(1, why);
    out(1, "\n");
    sys3(SYS_EXIT, 1, 0, 0);
    for (;;) {}
}

static u64 now_ns(void)
{
    struct timespec t;
    sys3(SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, &t, 0);
    return (u64)t.sec * 1000000000ul + (u64)t.nsec;
}

/* Sleeps until `at` (CLOCK_MONOTONIC nanoseconds). */
static void sleep_until(u64 at)
{
    struct timespec t = { (i64)(at / 1000000000ul), (i64)(at % 1000000000ul) };
    while (sys6(SYS_CLOCK_NANOSLEEP, 1, 1 /* TIMER_ABSTIME */, (i64)&t, 0, 0, 0) != 0) {}
}

static int tty;
static u32 *fb;
static u32 width, height, stride; /* stride in pixels */

#define WIN_W 480
#define WIN_H 360
static u32 window[WIN_W * WIN_H];
static u32 background[1920 * 1080];

static void changed(void) { out(1, "E\n"); }

static void typing(void)
{
    static const char text[] =
        "echo The quick brown fox jumps over the lazy dog\n";
    u64 t = now_ns();
    for (const char *p = text; *p; p++) {
        sys3(SYS_WRITE, tty, p, 1);
        changed();
        t += 125000000ul;
        sleep_until(t);
    }
}

static void scrolling(void)
{
    static const char body[] =
        "  The quick brown fox jumps over the lazy dog. 0123456789 "
        "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ ({[<>]}) "
        "Pack my box with five dozen liquor jugs.\n";
    char line[256];
    u64 t = now_ns();
    for (int i = 0; i < 120; i++) {
        line[0] = 'l'; line[1] = 'i'; line[2] = 'n'; line[3] = 'e'; line[4] = ' ';
        line[5] = (char)('0' + i / 100 % 10);
        line[6] = (char)('0' + i / 10 % 10);
        line[7] = (char)('0' + i % 10);
        u64 n = 8;
        for (const char *p = body; *p; p++) line[n++] = *p;
        sys3(SYS_WRITE, tty, line, n);
        changed();
        t += 33333333ul;
        sleep_until(t);
    }
}

/* A window: a title bar with "text" over a photo-like picture. */
static void make_window(void)
{
    for (u32 y = 0; y < WIN_H; y++) {
        for (u32 x = 0; x < WIN_W; x++) {
            u32 r, g, b;
            if (y < 24) {
                int glyph = y > 7 && y < 17 && x > 12 && x < 200 && (x / 3 + y / 2) % 4 != 0
                            && (x / 14) % 3 != 2;
                r = glyph ? 255 : 40; g = glyph ? 255 : 70; b = glyph ? 255 : 160;
            } else {
                /* A photo-like picture: smooth gradients and soft rings. */
                u32 dx = x > 240 ? x - 240 : 240 - x, dy = y > 190 ? y - 190 : 190 - y;
                u32 t = (dx * dx + dy * dy) / 24 % 512;
                u32 tri = t < 256 ? t : 511 - t;
                r = x * 255 / WIN_W;
                g = (y * 255 / WIN_H + tri) / 2;
                b = tri;
            }
            window[y * WIN_W + x] = (r << 16) | (g << 8) | b;
        }
    }
}

static void draw_window(int wx, int wy, int ox, int oy)
{
    /* Restore what the old position covered and the new one does not, then draw. */
    for (int y = oy; y < oy + WIN_H; y++) {
        for (int x = ox; x < ox + WIN_W; x++) {
            if (x >= wx && x < wx + WIN_W && y >= wy && y < wy + WIN_H) continue;
            fb[y * stride + x] = background[y * width + x];
        }
    }
    for (int y = 0; y < WIN_H; y++) {
        u32 *row = fb + (wy + y) * stride + wx;
        for (int x = 0; x < WIN_W; x++) row[x] = window[y * WIN_W + x];
    }
}

static void hold(const char *name, u64 ms)
{
    out(1, "OSVDI-HOLD ");
    out(1, name);
    out(1, "\n");
    sleep_until(now_ns() + ms * 1000000ul);
}

static void motion(void)
{
    for (u32 y = 0; y < height; y++)
        for (u32 x = 0; x < width; x++) background[y * width + x] = fb[y * stride + x];
    static const int strokes[3][2] = { { 20, 6 }, { -14, 8 }, { 8, -12 } };
    int x = 100, y = 120, ox = x, oy = y;
    for (int s = 0; s < 3; s++) {
        u64 t = now_ns();
        for (int f = 0; f < 60; f++) {
            x += strokes[s][0];
            y += strokes[s][1];
            if (x < 0) x = 0;
            if (y < 0) y = 0;
            if (x + WIN_W > (int)width) x = (int)width - WIN_W;
            if (y + WIN_H > (int)height) y = (int)height - WIN_H;
            draw_window(x, y, ox, oy);
            ox = x;
            oy = y;
            changed();
            t += 33333333ul;
            sleep_until(t);
        }
        hold("motion", 2500);
    }
    for (u32 yy = 0; yy < height; yy++)
        for (u32 xx = 0; xx < width; xx++) fb[yy * stride + xx] = background[yy * width + xx];
    changed();
}

static void phase(const char *name)
{
    out(1, "OSVDI-PHASE ");
    out(1, name);
    out(1, "\n");
}

/* The kernel enters with the stack 16-byte aligned, not as after a call: realign. */
__attribute__((force_align_arg_pointer, noreturn)) void _start(void)
{
    tty = (int)sys3(SYS_OPEN, "/dev/tty1", 01 | 0400 /* O_WRONLY | O_NOCTTY */, 0);
    int fd = (int)sys3(SYS_OPEN, "/dev/fb0", 02 /* O_RDWR */, 0);
    if (tty < 0 || fd < 0) die("cannot open /dev/tty1 or /dev/fb0");
    u8 var[160], fix[80];
    if (sys3(SYS_IOCTL, fd, 0x4600 /* FBIOGET_VSCREENINFO */, var) != 0
        || sys3(SYS_IOCTL, fd, 0x4602 /* FBIOGET_FSCREENINFO */, fix) != 0)
        die("framebuffer ioctl");
    width = *(u32 *)(var + 0);
    height = *(u32 *)(var + 4);
    u32 bits = *(u32 *)(var + 24);
    u32 line = *(u32 *)(fix + 48);
    if (bits != 32 || width > 1920 || height > 1080 || width < WIN_W || height < WIN_H)
        die("framebuffer is not 32-bit and at most 1920x1080");
    stride = line / 4;
    i64 p = sys6(SYS_MMAP, 0, (i64)line * height, 3 /* RW */, 1 /* SHARED */, fd, 0);
    if (p < 0 && p > -4096) die("cannot map the framebuffer");
    fb = (u32 *)p;
    make_window();
    out(tty, "\033[H\033[2J");
    changed();
    hold("start", 1000);

    phase("typing");
    typing();
    hold("typing", 1500);
    phase("scrolling");
    scrolling();
    hold("scrolling", 1500);
    phase("motion");
    motion();
    hold("moved", 500);
    phase("idle");
    hold("idle", 4000);
    out(tty, "\033[H\033[2J");
    changed();
    out(1, "OSVDI-DONE\n");
    sys3(SYS_EXIT, 0, 0, 0);
    for (;;) {}
}
