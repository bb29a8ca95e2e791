"""What the binary and the code say, for the content checks: the flags, environment variables and
subcommands of `maturityd --help`, and the metric names svc_metrics.c exports."""
import re
import subprocess


def help_facts(maturityd):
    text = subprocess.run([maturityd, "--help"], capture_output=True, text=True,
                          check=True).stdout
    flags = set(re.findall(r"^\s+--([a-z0-9-]+)", text, re.M))
    flags |= set(re.findall(r"\[--([a-z0-9-]+)", text))  # subcommand flags: health [--health-addr]
    flags |= {"help", "version"}
    envs = set(re.findall(r"\[env ([A-Z_]+)", text))
    commands = set(re.findall(r"^  (\w+)\s{2,}", text, re.M))
    defaults = dict(re.findall(r"^\s+--([a-z0-9-]+) V.*default ([^,\]]+)", text, re.M))
    return {"flags": flags, "envs": envs, "commands": commands, "defaults": defaults,
            "text": text}


def metric_names(source_dir):
    """Every family the code exports, from its `# TYPE name kind` lines; histograms also as
    name_bucket, name_sum and name_count."""
    with open(f"{source_dir}/service/svc_metrics.c") as f:
        code = f.read()
    code = re.sub(r'"\s*\n\s*"', "", code)  # C string literals split over lines, joined
    names = set()
    for name, kind in re.findall(r"# TYPE ([a-z_]+) (counter|gauge|histogram)", code):
        names.add(name)
        if kind == "histogram":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names
