/**
 * The guest system helper: a perl loop (perl-base is in every Debian system; Node cannot
 * issue these syscalls and ioctls) that envd starts once at boot. Being resident, it is in
 * every memory snapshot already paged in, so a restore's /init costs two pipe round trips
 * instead of two process spawns (each ~0.5 s under TCG).
 *
 * One request per line on stdin, one answer per line on stdout, in order:
 *   ping                    -> ok
 *   clock <sec> <nsec>      -> clock_settime(CLOCK_REALTIME) (x86_64 syscall 227)
 *   entropy <hex>           -> RNDADDENTROPY (credited) then RNDRESEEDCRNG on /dev/urandom
 *   xattr-get <hexpath>...  -> "ok <attrs> <attrs>...", one per path: "-" when it has no
 *                              user.e2b.* attribute (or cannot be read), else comma-joined
 *                              <hexkey>=<hexvalue> with the "user.e2b." prefix stripped
 *   xattr-set <hexpath> [<hexkey>=<hexvalue>...]
 *                           -> makes the path's user.e2b.* attributes exactly these
 * Answers are "ok", "ok <data>" or "err <message>". Paths, keys and values travel as hex so
 * any byte fits one line. The xattr calls follow symlinks (x86_64 syscalls: setxattr 188,
 * getxattr 191, listxattr 194, removexattr 197); listxattr first, so an entry without
 * attributes costs one syscall.
 */
export const SYSTEM_HELPER_SCRIPT = String.raw`
use strict;
$| = 1;
# Opened once at start, so the open file is already in every snapshot.
open(my $rng, '+<', '/dev/urandom') or die "open /dev/urandom: $!\n";
sub add_entropy {
  die "bad entropy\n" unless $_[0] =~ /^(?:[0-9a-fA-F]{2})+$/;
  my $bytes = pack('H*', $_[0]);
  ioctl($rng, 0x40085203, pack('ii', 8 * length($bytes), length($bytes)) . $bytes)
    or die "RNDADDENTROPY: $!\n";
  ioctl($rng, 0x5207, 0) or die "RNDRESEEDCRNG: $!\n";
}
sub set_clock {
  my ($sec, $nsec) = @_;
  die "bad time\n" unless defined $nsec && $sec =~ /^\d+$/ && $nsec =~ /^\d+$/;
  my $timespec = pack('q q', $sec, $nsec);
  syscall(227, 0, $timespec) == 0 or die "clock_settime: $!\n";
}
my $PREFIX = 'user.e2b.';
sub unhex {
  my $h = $_[0] // '';
  die "bad hex\n" unless $h =~ /^(?:[0-9a-fA-F]{2})*$/;
  return pack('H*', $h);
}
sub e2b_names {
  my ($path) = @_;
  my $size = syscall(194, $path, 0, 0);
  return () if $size <= 0;
  my $buf = "\0" x $size;
  my $n = syscall(194, $path, $buf, $size);
  return () if $n <= 0;
  return grep { index($_, $PREFIX) == 0 } split(/\0/, substr($buf, 0, $n));
}
sub xattr_get_one {
  my $path = unhex($_[0]);
  my @pairs;
  for my $name (e2b_names($path)) {
    my $size = syscall(191, $path, $name, 0, 0);
    next if $size < 0;
    my $val = "\0" x ($size + 1);
    my $n = syscall(191, $path, $name, $val, $size);
    next if $n < 0;
    push @pairs, unpack('H*', substr($name, length $PREFIX)) . '=' . unpack('H*', substr($val, 0, $n));
  }
  return @pairs ? join(',', @pairs) : '-';
}
sub xattr_set {
  my ($hexpath, @pairs) = @_;
  my $path = unhex($hexpath);
  die "no path\n" unless length $path;
  my %want;
  for my $pair (@pairs) {
    my ($k, $v) = split(/=/, $pair, 2);
    $want{$PREFIX . unhex($k)} = unhex($v);
  }
  for my $name (e2b_names($path)) {
    next if exists $want{$name};
    syscall(197, $path, $name) == 0 or die "removexattr $name: $!\n";
  }
  for my $name (keys %want) {
    my $value = $want{$name};
    syscall(188, $path, $name, $value, length($value), 0) == 0 or die "setxattr $name: $!\n";
  }
}
while (my $line = <STDIN>) {
  chomp $line;
  my ($op, @args) = split(/ /, $line);
  $op = '' unless defined $op;
  my $data;
  my $ok = eval {
    if ($op eq 'ping') { }
    elsif ($op eq 'xattr-get') { $data = join(' ', map { xattr_get_one($_) } @args); }
    elsif ($op eq 'xattr-set') { xattr_set(@args); }
    elsif ($op eq 'clock') { set_clock(@args); }
    elsif ($op eq 'entropy') { add_entropy($args[0] // ''); }
    else { die "unknown request '$op'\n"; }
    1;
  };
  if ($ok) { print defined $data ? "ok $data\n" : "ok\n"; }
  else { my $err = $@; $err =~ s/\s+/ /g; $err =~ s/ $//; print "err $err\n"; }
}
`;
